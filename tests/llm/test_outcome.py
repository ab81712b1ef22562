"""Outcomes: usage bounded to what a request could produce, prompts bounded by UTF-8 bytes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from llm.catalog import ModelEntry
from llm.charges import UsageBound, bound_usage, charge_for
from llm.costs import COST_QUANTUM
from llm.outcome import BillingReason, Ending, outcome
from llm.prices import PriceRow
from llm.tokens import estimate_messages_tokens, fill_unreported, prompt_upper_bound
from llm.types import ChatRequest, Usage

PRICE = PriceRow("m@2025-01-01", date(2025, 1, 1), Decimal("3"), Decimal("15"))
MODEL = ModelEntry(
    id="m",
    provider="p",
    upstream="m",
    prices=(PRICE,),
    context_window=200_000,
    capabilities=frozenset({"chat"}),
    quality_rank=1,
    speed_rank=1,
    max_output_tokens=8_192,
)


def request(text: str, max_tokens: int | None = 100) -> ChatRequest:
    return ChatRequest(
        model="m", messages=[{"role": "user", "content": text}], max_tokens=max_tokens
    )


def test_an_absurd_report_is_billed_at_the_bound_and_kept_as_reported():
    sent = request("How many tokens can this be?")
    reported = Usage(input_tokens=10**15, output_tokens=10**15, reasoning_tokens=10**15)
    charge = charge_for(MODEL, PRICE, reported, UsageBound.for_chat(MODEL, sent), sent)
    bound = prompt_upper_bound(sent.messages)
    assert charge.usage.input_tokens == bound and charge.usage.output_tokens == 100
    assert charge.usage.reasoning_tokens == 100
    assert charge.reported == reported and charge.is_anomalous
    assert charge.cost == (bound * Decimal(3) + 100 * Decimal(15)) / 1_000_000
    result = outcome(Ending.SERVED, BillingReason.REPORTED, charges=(charge,))
    assert result.is_anomalous and result.reported.input_tokens == 10**15


def test_a_plausible_report_is_billed_as_reported():
    sent = request("Say hello " * 20)
    reported = Usage(input_tokens=45, output_tokens=100, cached_input_tokens=10)
    charge = charge_for(MODEL, PRICE, reported, UsageBound.for_chat(MODEL, sent), sent)
    assert charge.usage == reported and not charge.is_anomalous


def test_without_max_tokens_the_bound_is_the_models_output_cap():
    sent = request("hi", max_tokens=None)
    assert UsageBound.for_chat(MODEL, sent).output == 8_192


def test_a_prompt_never_exceeds_the_context_window():
    sent = request("x" * 300_000)
    assert UsageBound.for_chat(MODEL, sent).prompt == 200_000


@given(st.text(min_size=1, max_size=400))
def test_the_byte_bound_is_at_least_the_text_in_bytes_and_the_estimate(text):
    messages = [{"role": "user", "content": text}]
    bound = prompt_upper_bound(messages)
    assert bound >= len(text.encode("utf-8"))
    assert bound >= estimate_messages_tokens(messages)


def test_a_prompt_three_times_the_naive_estimate_stays_within_the_bound():
    # Digits and punctuation tokenise far worse than four characters a token.
    text = "7,3;9|" * 2_000
    messages = [{"role": "user", "content": text}]
    real_tokens = 3 * estimate_messages_tokens(messages)
    assert real_tokens <= prompt_upper_bound(messages)


def test_cache_classes_never_exceed_the_prompt():
    usage = Usage(
        input_tokens=100, cached_input_tokens=80, cache_write_5m_tokens=50, cache_write_1h_tokens=50
    )
    bounded = bound_usage(usage, UsageBound(prompt=100, output=10, tool_prompt=0))
    assert bounded.cached_input_tokens == 80
    assert bounded.cache_write_1h_tokens + bounded.cache_write_5m_tokens == 20


def test_a_usage_within_its_bound_is_billed_as_reported():
    reported = Usage(
        input_tokens=100, output_tokens=10, cached_input_tokens=40, billed_input_units=90
    )
    bound = UsageBound(prompt=100, output=10, tool_prompt=0)
    assert bound_usage(reported, bound) is reported  # frozen: the same value, shared
    assert bound_usage(reported, UsageBound(prompt=99, output=10, tool_prompt=0)) == Usage(
        input_tokens=99, output_tokens=10, cached_input_tokens=40, billed_input_units=90
    )


def test_unreported_numbers_are_estimated_and_flagged_reported_ones_kept():
    messages = [{"role": "user", "content": "Tell me a story"}]
    # Anthropic's message_start: the input counts are known, output barely started.
    reported = Usage(input_tokens=5_000, cached_input_tokens=4_000, output_tokens=1)
    usage = fill_unreported(reported, messages, "Once upon a time there was a gateway")
    assert (usage.input_tokens, usage.cached_input_tokens) == (5_000, 4_000)
    assert usage.output_tokens > 1
    assert usage.output_estimated and not usage.input_estimated
    nothing = fill_unreported(None, messages, "")
    assert nothing.input_estimated and nothing.input_tokens == estimate_messages_tokens(messages)


counts = st.integers(min_value=0, max_value=10**15)


@given(
    reported=st.builds(
        Usage,
        input_tokens=counts,
        output_tokens=counts,
        cached_input_tokens=counts,
        cache_write_5m_tokens=counts,
        cache_write_1h_tokens=counts,
        reasoning_tokens=counts,
        tool_use_prompt_tokens=counts,
    ),
    prompt=st.integers(min_value=1, max_value=2_000_000),
    output=st.integers(min_value=1, max_value=200_000),
)
def test_no_charge_bills_more_than_reported_or_than_the_bound(reported, prompt, output):
    bound = UsageBound(prompt=prompt, output=output, tool_prompt=prompt)
    billed = bound_usage(reported, bound)
    assert billed.input_tokens <= min(reported.input_tokens, prompt)
    assert billed.output_tokens <= min(reported.output_tokens, output)
    assert billed.tool_use_prompt_tokens <= reported.tool_use_prompt_tokens
    for name in ("cached_input_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens"):
        assert getattr(billed, name) <= getattr(reported, name)
    cache = billed.cached_input_tokens + billed.cache_write_5m_tokens + billed.cache_write_1h_tokens
    assert cache <= billed.input_tokens
    assert billed.reasoning_tokens <= billed.output_tokens
    sent = request("x")
    charge = charge_for(MODEL, PRICE, billed, bound, sent)
    # Never more than the bound at this price (prompt and tool-use prompt at 3, output at 15).
    most = (2 * prompt * Decimal(3) + output * Decimal(15)) / 1_000_000
    assert charge.cost <= most + COST_QUANTUM
