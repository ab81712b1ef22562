from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from llm.costs import COST_QUANTUM, compute_cost, compute_raw_cost, sum_usage
from llm.prices import PriceRow
from llm.types import TOKEN_CLASSES, Usage

SONNET = PriceRow(
    "s@2025-01-01",
    date(2025, 1, 1),
    input_per_mtok=Decimal("3.00"),
    output_per_mtok=Decimal("15.00"),
    cached_input_per_mtok=Decimal("0.30"),
)
NO_CACHE_PRICE = PriceRow("n@2025-01-01", date(2025, 1, 1), Decimal("0.15"), Decimal("0.60"))


def test_cost_of_a_plain_call_is_tokens_times_price_per_million():
    usage = Usage(input_tokens=1_000, output_tokens=500)
    # 1000 x 3 / 1e6 + 500 x 15 / 1e6 = 0.003 + 0.0075
    assert compute_cost(SONNET, usage) == Decimal("0.01050000")


def test_cached_input_tokens_are_charged_at_the_cached_price():
    usage = Usage(input_tokens=10_000, output_tokens=100, cached_input_tokens=8_000)
    # 2000 x 3 + 8000 x 0.30 + 100 x 15 = 6000 + 2400 + 1500 = 9900 per million
    assert compute_cost(SONNET, usage) == Decimal("0.00990000")


def test_without_a_cached_price_cache_hits_cost_the_input_price():
    usage = Usage(input_tokens=1_000, output_tokens=0, cached_input_tokens=1_000)
    assert compute_cost(NO_CACHE_PRICE, usage) == Decimal("0.00015000")


def test_a_per_request_fee_is_added_once():
    row = PriceRow(
        "p@2025-01-01", date(2025, 1, 1), Decimal("1"), Decimal("1"), per_request=Decimal("0.005")
    )
    assert compute_cost(row, Usage(input_tokens=100, output_tokens=100)) == Decimal("0.00520000")


def test_the_total_is_rounded_half_up_to_eight_places():
    row = PriceRow("r@2025-01-01", date(2025, 1, 1), Decimal("0.005"), Decimal("0"))
    # 1 token x 0.005 / 1e6 = 0.000000005 exactly: half a unit of the 8th place rounds up.
    assert compute_raw_cost(row, Usage(input_tokens=1)) == Decimal("0.000000005")
    assert compute_cost(row, Usage(input_tokens=1)) == Decimal("0.00000001")
    assert compute_cost(row, Usage(input_tokens=0)) == Decimal("0E-8")


def test_sub_cent_prices_stay_exact_for_huge_token_counts():
    row = PriceRow("c@2025-01-01", date(2025, 1, 1), Decimal("0.0375"), Decimal("0.15"))
    usage = Usage(input_tokens=987_654_321, output_tokens=123_456_789)
    expected = (
        Decimal(987_654_321) * Decimal("0.0375") + Decimal(123_456_789) * Decimal("0.15")
    ) / Decimal(1_000_000)
    assert compute_raw_cost(row, usage) == expected
    # 37037037.0375 + 18518518.35 = 55555555.3875 per million -> 55.5555553875 -> 55.55555539
    assert compute_cost(row, usage) == Decimal("55.55555539")


tokens = st.integers(min_value=0, max_value=10**9)
prices = st.decimals(min_value=0, max_value=200, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def usages(draw):
    inp = draw(tokens)
    return Usage(
        input_tokens=inp, output_tokens=draw(tokens), cached_input_tokens=draw(st.integers(0, inp))
    )


@st.composite
def price_rows(draw):
    inp = draw(prices)
    cached = draw(st.none() | st.decimals(min_value=0, max_value=inp, places=4))
    return PriceRow("h@2025-01-01", date(2025, 1, 1), inp, draw(prices), cached)


@given(price_rows(), usages(), usages())
def test_exact_cost_is_additive_over_usages(row, a, b):
    assert compute_raw_cost(row, sum_usage([a, b])) == compute_raw_cost(row, a) + compute_raw_cost(
        row, b
    )
    rounded_sum = compute_cost(row, a) + compute_cost(row, b)
    assert abs(rounded_sum - compute_cost(row, sum_usage([a, b]))) <= COST_QUANTUM


every_usage = st.builds(
    Usage,
    **dict.fromkeys(TOKEN_CLASSES, tokens),
    billed_input_units=st.none() | tokens,
    billed_output_units=st.none() | tokens,
    service_tier=st.sampled_from(["", "priority", "flex"]),
    estimated_parts=st.frozensets(st.sampled_from(["input", "output"])),
    estimated=st.booleans(),
)


@given(every_usage)
def test_the_sum_of_one_usage_is_that_usage(usage):
    assert sum_usage([usage]) == usage
    assert sum_usage([usage, Usage()]) == usage  # the general sum agrees with the short cut


@given(price_rows(), usages(), st.integers(0, 10**6))
def test_more_output_never_costs_less(row, usage, extra):
    more = Usage(usage.input_tokens, usage.output_tokens + extra, usage.cached_input_tokens)
    assert compute_cost(row, more) >= compute_cost(row, usage)


@given(price_rows(), usages())
def test_cost_is_a_non_negative_decimal_of_eight_places_never_a_float(row, usage):
    cost = compute_cost(row, usage)
    assert type(cost) is Decimal and cost >= 0
    assert cost == cost.quantize(COST_QUANTUM)
    assert cost.as_tuple().exponent == -8


@given(price_rows(), usages())
def test_cache_hits_never_cost_more_than_uncached_input(row, usage):
    uncached = Usage(usage.input_tokens, usage.output_tokens, 0)
    assert compute_cost(row, usage) <= compute_cost(row, uncached)
