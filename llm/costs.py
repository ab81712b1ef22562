"""What a call costs, in exact USD: the one cost function.

Money is Decimal from the catalogue's quoted strings to the result: no float ever takes part.
The price row's rates for the request (its service tier, else its long-context tier, else the
plain rates) apply to each token class:

  plain input (the prompt minus cache reads and writes, plus tool-use prompt tokens) x input
  + cache reads x cached input + 5-minute cache writes x 5m write + 1-hour writes x 1h write
  + output (reasoning included) x output, all per million,
  + the per-request fee and the fee of each priced option the request carried.

When the provider says what it bills (Cohere's billed_units) those units are priced instead of
the tokens processed. The total is computed exactly and quantized once, to 8 decimal places with
ROUND_HALF_UP, the rounding people expect on an invoice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from llm.prices import PriceRow
from llm.types import TOKEN_CLASSES, ChatRequest, Usage

COST_QUANTUM = Decimal("0.00000001")
_PER_MILLION = Decimal(1_000_000)


def request_options(request: ChatRequest | None) -> frozenset[str]:
    """The options a request carries that a price row may charge a fee for: "name=value" for
    each pass-through field, dotted one level down ("web_search_options.search_context_size=high").
    """
    if request is None:
        return frozenset()
    options: set[str] = set()
    for name, value in request.extra.items():
        if isinstance(value, Mapping):
            options.update(f"{name}.{key}={_word(inner)}" for key, inner in value.items())
        else:
            options.add(f"{name}={_word(value)}")
    return frozenset(options)


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def requested_tier(options: frozenset[str]) -> str:
    for option in options:
        if option.startswith("service_tier="):
            return option.partition("=")[2]
    return ""


def compute_raw_cost(
    price: PriceRow, usage: Usage, options: frozenset[str] = frozenset()
) -> Decimal:
    """The exact, unrounded cost: additive over usages, for sums and tests."""
    rates = price.rates_for(usage.prompt_tokens, usage.service_tier or requested_tier(options))
    with localcontext() as ctx:
        ctx.prec = 60  # tokens x price never comes near this: the arithmetic stays exact
        if usage.billed_input_units is not None or usage.billed_output_units is not None:
            billed_in = usage.billed_input_units
            billed_out = usage.billed_output_units
            per_million = (usage.prompt_tokens if billed_in is None else billed_in) * rates.of(
                "input_per_mtok"
            ) + (usage.output_tokens if billed_out is None else billed_out) * rates.of(
                "output_per_mtok"
            )
        else:
            prompt = max(usage.input_tokens, 0)
            cached = min(max(usage.cached_input_tokens, 0), prompt)
            write_1h = min(max(usage.cache_write_1h_tokens, 0), prompt - cached)
            write_5m = min(max(usage.cache_write_5m_tokens, 0), prompt - cached - write_1h)
            plain = prompt - cached - write_1h - write_5m + max(usage.tool_use_prompt_tokens, 0)
            per_million = (
                plain * rates.input_per_mtok
                + cached * rates.of("cached_input_per_mtok")
                + write_5m * rates.of("cache_write_5m_per_mtok")
                + write_1h * rates.of("cache_write_1h_per_mtok")
                + max(usage.output_tokens, 0) * rates.output_per_mtok
            )
        return per_million / _PER_MILLION + price.fees_for(options)


def compute_cost(price: PriceRow, usage: Usage, options: frozenset[str] = frozenset()) -> Decimal:
    """USD for one call at price, quantized to 8 places with ROUND_HALF_UP."""
    with localcontext() as ctx:
        ctx.prec = 60
        raw = compute_raw_cost(price, usage, options)
        return raw.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_cost(
    price: PriceRow, prompt_tokens: int, output_tokens: int, options: frozenset[str]
) -> Decimal:
    """The most a call of this size can cost at price: the whole prompt in its dearest class
    (plain, or written to a prompt cache), the whole output cap, every fee the options carry.
    Each class is priced linearly, so that is the dearest of the three shapes' costs, in one
    sum (it runs for every candidate of every request)."""
    prompt, output = max(prompt_tokens, 0), max(output_tokens, 0)
    rates = price.rates_for(prompt, requested_tier(options))
    dearest = max(
        rates.input_per_mtok,
        rates.of("cache_write_5m_per_mtok"),
        rates.of("cache_write_1h_per_mtok"),
    )
    with localcontext() as ctx:
        ctx.prec = 60
        raw = (prompt * dearest + output * rates.output_per_mtok) / _PER_MILLION
        raw += price.fees_for(options)
        return raw.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Add usages up, class by class (the structured-output retries, for one)."""
    usages = list(usages)
    if len(usages) == 1:
        return usages[0]  # the usual single charge: frozen, and already what the sum would build
    total = {name: sum(getattr(u, name) for u in usages) for name in TOKEN_CLASSES}
    billed_in = [u.billed_input_units for u in usages if u.billed_input_units is not None]
    billed_out = [u.billed_output_units for u in usages if u.billed_output_units is not None]
    parts = frozenset().union(*(u.estimated_parts for u in usages)) if usages else frozenset()
    return dataclasses.replace(
        Usage(),
        **total,
        billed_input_units=sum(billed_in) if billed_in else None,
        billed_output_units=sum(billed_out) if billed_out else None,
        service_tier=next((u.service_tier for u in usages if u.service_tier), ""),
        estimated_parts=parts,
        estimated=bool(parts),
    )
