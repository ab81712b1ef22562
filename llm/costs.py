"""What a call costs, in exact USD.

Money is Decimal from the catalogue's quoted strings to the result: no float ever takes part.
cost = (uncached input x input price + cached input x cached price + output x output price)
       / 1,000,000 + per-request fee,
computed exactly and then quantized once, to 8 decimal places (1/100 of a micro-dollar) with
ROUND_HALF_UP, the rounding people expect on an invoice. Rounding only the total (never the parts)
keeps the error of one call under half a unit of the last place.
Streamed and non-streamed calls go through this same function with the final Usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, localcontext

from llm.catalog import PriceRow
from llm.types import Usage

COST_QUANTUM = Decimal("0.00000001")
_PER_MILLION = Decimal(1_000_000)


def compute_raw_cost(price: PriceRow, usage: Usage) -> Decimal:
    """The exact, unrounded cost: additive over usages, for sums and tests."""
    cached = min(max(usage.cached_input_tokens, 0), usage.input_tokens)
    uncached = usage.input_tokens - cached
    cached_price = (
        price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    )
    with localcontext() as ctx:
        ctx.prec = 60  # tokens x price never comes near this: the arithmetic stays exact
        per_million = (
            uncached * price.input_per_mtok
            + cached * cached_price
            + usage.output_tokens * price.output_per_mtok
        )
        return per_million / _PER_MILLION + price.per_request


def compute_cost(price: PriceRow, usage: Usage) -> Decimal:
    """USD for one call at price, quantized to 8 places with ROUND_HALF_UP."""
    with localcontext() as ctx:
        ctx.prec = 60
        return compute_raw_cost(price, usage).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Add usages up (the structured-output retries, for one)."""
    total = Usage()
    for usage in usages:
        total.input_tokens += usage.input_tokens
        total.output_tokens += usage.output_tokens
        total.cached_input_tokens += usage.cached_input_tokens
        total.estimated = total.estimated or usage.estimated
    return total
