"""Every price dimension of the catalogue, from the provider's usage report to the cost.

Each case parses a usage object the way the provider sends it (its documented shape), prices it
with a catalogue row written in YAML, and checks the arithmetic by hand.
"""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.catalog import CatalogError, build_catalog
from llm.costs import compute_cost, request_options, worst_case_cost
from llm.providers import anthropic, cohere, gemini, openai_compat
from llm.types import ChatRequest, Usage

CATALOG = textwrap.dedent(
    """\
    providers:
      p: {name: P, dialect: openai, base_url: "http://127.0.0.1:1/v1"}
    models:
      - id: claude
        provider: p
        upstream: claude
        prices:
          - {valid_from: 2025-01-01, input_per_mtok: "3.00", output_per_mtok: "15.00",
             cached_input_per_mtok: "0.30"}
          - {valid_from: 2026-01-01, input_per_mtok: "3.00", output_per_mtok: "15.00",
             cached_input_per_mtok: "0.30", cache_write_5m_per_mtok: "3.75",
             cache_write_1h_per_mtok: "6.00"}
        context_window: 200000
        capabilities: [chat]
        quality_rank: 1
        speed_rank: 1
      - id: gpt
        provider: p
        upstream: gpt
        prices:
          - valid_from: 2025-01-01
            input_per_mtok: "1.25"
            output_per_mtok: "10.00"
            cached_input_per_mtok: "0.125"
            service_tiers:
              priority: {input_per_mtok: "2.50", output_per_mtok: "20.00",
                         cached_input_per_mtok: "0.25"}
              flex: {input_per_mtok: "0.625", output_per_mtok: "5.00"}
        context_window: 400000
        capabilities: [chat]
        quality_rank: 1
        speed_rank: 1
      - id: gemini-pro
        provider: p
        upstream: gemini-pro
        prices:
          - valid_from: 2025-01-01
            input_per_mtok: "1.25"
            output_per_mtok: "10.00"
            cached_input_per_mtok: "0.125"
            long_context: {above_input_tokens: 200000, input_per_mtok: "2.50",
                           output_per_mtok: "15.00", cached_input_per_mtok: "0.25"}
        context_window: 1048576
        capabilities: [chat]
        quality_rank: 1
        speed_rank: 1
      - id: sonar
        provider: p
        upstream: sonar
        prices:
          - valid_from: 2025-01-01
            input_per_mtok: "1.00"
            output_per_mtok: "1.00"
            per_request: "0.005"
            request_fees:
              web_search_options.search_context_size=high: "0.007"
        context_window: 127072
        capabilities: [chat]
        quality_rank: 1
        speed_rank: 1
      - id: command
        provider: p
        upstream: command
        prices:
          - {valid_from: 2025-01-01, input_per_mtok: "2.50", output_per_mtok: "10.00"}
        context_window: 256000
        capabilities: [chat]
        quality_rank: 1
        speed_rank: 1
    """
)
ON = date(2026, 6, 1)


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(CATALOG, {})


def price(catalog, model: str):
    return catalog.models[model].price_at(ON)


def test_anthropic_cache_writes_are_priced_by_lifetime(catalog):
    # https://docs.anthropic.com/en/api/messages (usage.cache_creation)
    usage = anthropic.parse_usage(
        {
            "input_tokens": 1_000,
            "cache_read_input_tokens": 20_000,
            "cache_creation_input_tokens": 30_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 10_000,
                "ephemeral_1h_input_tokens": 20_000,
            },
            "output_tokens": 500,
        }
    )
    assert (usage.input_tokens, usage.cached_input_tokens) == (51_000, 20_000)
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (10_000, 20_000)
    # 1000 x 3 + 20000 x 0.30 + 10000 x 3.75 + 20000 x 6 + 500 x 15 = 174000 per million
    assert compute_cost(price(catalog, "claude"), usage) == Decimal("0.17400000")


def test_anthropic_cache_writes_without_a_split_are_five_minute_writes(catalog):
    usage = anthropic.parse_usage(
        {"input_tokens": 10, "cache_creation_input_tokens": 1_000, "output_tokens": 0}
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (1_000, 0)
    # 10 x 3 + 1000 x 3.75 = 3780 per million
    assert compute_cost(price(catalog, "claude"), usage) == Decimal("0.00378000")


def test_cache_writes_in_an_older_row_cost_the_input_price(catalog):
    older = catalog.models["claude"].price_at(date(2025, 6, 1))
    usage = Usage(input_tokens=1_000, cache_write_1h_tokens=1_000)
    assert compute_cost(older, usage) == Decimal("0.00300000")


def test_openrouter_cache_write_tokens_are_cache_writes(catalog):
    # https://openrouter.ai/docs/use-cases/usage-accounting
    usage = openai_compat.usage_of(
        {
            "usage": {
                "prompt_tokens": 10_194,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 10_000},
                "completion_tokens_details": {"reasoning_tokens": 0},
            }
        }
    )
    assert usage.cache_write_5m_tokens == 10_000
    # 194 x 3 + 10000 x 3.75 + 2 x 15 = 38112 per million
    assert compute_cost(price(catalog, "claude"), usage) == Decimal("0.03811200")


def test_openai_priority_and_flex_tiers_use_their_rates(catalog):
    # https://platform.openai.com/docs/api-reference/chat/object (service_tier)
    body = {
        "usage": {
            "prompt_tokens": 2_000,
            "completion_tokens": 1_000,
            "prompt_tokens_details": {"cached_tokens": 1_000},
            "completion_tokens_details": {"reasoning_tokens": 600},
        }
    }
    row = price(catalog, "gpt")
    default = openai_compat.usage_of({**body, "service_tier": "default"})
    priority = openai_compat.usage_of({**body, "service_tier": "priority"})
    flex = openai_compat.usage_of({**body, "service_tier": "flex"})
    assert priority.reasoning_tokens == 600 and priority.service_tier == "priority"
    # 1000 x 1.25 + 1000 x 0.125 + 1000 x 10 = 11375 per million
    assert compute_cost(row, default) == Decimal("0.01137500")
    # 1000 x 2.50 + 1000 x 0.25 + 1000 x 20 = 22750: twice the standard rate
    assert compute_cost(row, priority) == Decimal("0.02275000")
    # flex states no cached rate, so the row's applies: 1000 x 0.625 + 1000 x 0.125 + 1000 x 5
    assert compute_cost(row, flex) == Decimal("0.00575000")


def test_a_requested_tier_is_billed_when_the_answer_does_not_say(catalog):
    request = ChatRequest(model="gpt", messages=[], extra={"service_tier": "priority"})
    usage = Usage(input_tokens=1_000_000)
    assert compute_cost(price(catalog, "gpt"), usage, request_options(request)) == Decimal("2.5")


def test_gemini_long_context_rates_apply_above_the_threshold(catalog):
    # https://ai.google.dev/api/generate-content#UsageMetadata
    row = price(catalog, "gemini-pro")
    short = gemini.parse_usage({"promptTokenCount": 200_000, "candidatesTokenCount": 1_000})
    long = gemini.parse_usage({"promptTokenCount": 200_001, "candidatesTokenCount": 1_000})
    # at the threshold: 200000 x 1.25 + 1000 x 10
    assert compute_cost(row, short) == Decimal("0.26000000")
    # above it, the whole request at the long rates: 200001 x 2.50 + 1000 x 15
    assert compute_cost(row, long) == Decimal("0.51500250")


def test_gemini_tool_use_prompt_and_thoughts_are_billed(catalog):
    usage = gemini.parse_usage(
        {
            "promptTokenCount": 1_000,
            "cachedContentTokenCount": 400,
            "candidatesTokenCount": 100,
            "thoughtsTokenCount": 300,
            "toolUsePromptTokenCount": 2_000,
        }
    )
    assert (usage.tool_use_prompt_tokens, usage.reasoning_tokens) == (2_000, 300)
    assert usage.prompt_tokens == 3_000 and usage.output_tokens == 400
    # (600 + 2000) x 1.25 + 400 x 0.125 + 400 x 10 = 7300 per million
    assert compute_cost(price(catalog, "gemini-pro"), usage) == Decimal("0.00730000")


def test_request_fees_are_charged_for_the_options_the_request_carries(catalog):
    row = price(catalog, "sonar")
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    high = ChatRequest(
        model="sonar", messages=[], extra={"web_search_options": {"search_context_size": "high"}}
    )
    low = ChatRequest(
        model="sonar", messages=[], extra={"web_search_options": {"search_context_size": "low"}}
    )
    # 2000 x 1 per million + 0.005 per request (+ 0.007 for high search context)
    assert compute_cost(row, usage, request_options(high)) == Decimal("0.01400000")
    assert compute_cost(row, usage, request_options(low)) == Decimal("0.00700000")


def test_cohere_is_billed_on_billed_units(catalog):
    # https://docs.cohere.com/reference/chat (usage.billed_units, usage.tokens)
    usage = cohere.parse_usage(
        {
            "billed_units": {"input_tokens": 1_000, "output_tokens": 200},
            "tokens": {"input_tokens": 1_073, "output_tokens": 215},
        }
    )
    assert (usage.input_tokens, usage.output_tokens) == (1_073, 215)
    # billed units, not processed tokens: 1000 x 2.50 + 200 x 10 = 4500 per million
    assert compute_cost(price(catalog, "command"), usage) == Decimal("0.00450000")


def test_the_worst_case_takes_the_dearest_input_class(catalog):
    # All of a 1000-token prompt written to the 1-hour cache (6.00) is dearer than plain input.
    assert worst_case_cost(price(catalog, "claude"), 1_000, 0, frozenset()) == Decimal("0.006")


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(["claude", "gpt", "gemini-pro", "sonar", "command"]),
    prompt=st.integers(min_value=-5, max_value=2_000_000),
    output=st.integers(min_value=-5, max_value=200_000),
    options=st.sets(
        st.sampled_from(
            [
                "service_tier=priority",
                "service_tier=flex",
                "web_search_options.search_context_size=high",
                "temperature=0.5",
            ]
        )
    ).map(frozenset),
)
def test_the_worst_case_is_the_dearest_of_the_three_shapes_priced_one_by_one(
    model, prompt, output, options
):
    row = price(build_catalog(CATALOG, {}), model)
    if len([o for o in options if o.startswith("service_tier=")]) > 1:
        options = options - {"service_tier=flex"}
    shapes = [
        Usage(input_tokens=prompt, output_tokens=output),
        Usage(input_tokens=prompt, output_tokens=output, cache_write_5m_tokens=prompt),
        Usage(input_tokens=prompt, output_tokens=output, cache_write_1h_tokens=prompt),
    ]
    dearest = max(compute_cost(row, usage, options) for usage in shapes)
    assert worst_case_cost(row, prompt, output, options) == dearest


def test_a_tier_without_an_input_price_is_refused():
    broken = CATALOG.replace(
        'flex: {input_per_mtok: "0.625", output_per_mtok: "5.00"}',
        'flex: {output_per_mtok: "5.00"}',
    )
    with pytest.raises(CatalogError) as caught:
        build_catalog(broken, {})
    assert "input_per_mtok" in str(caught.value)
