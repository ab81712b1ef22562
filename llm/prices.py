"""Prices as the catalogue states them: effective-dated rows per model, each with every
dimension a provider bills (token classes, cache writes by lifetime, long-context and
service-tier rates, flat per-request fees), and how a model's `prices` list in
models_config.yaml reads into them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any

Complain = Callable[[list[Any], str], None]


@dataclass(frozen=True)
class Rates:
    """USD per million tokens of each class. None: the class costs the plain input price."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None  # cache reads
    cache_write_5m_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None

    def of(self, name: str) -> Decimal:
        value = getattr(self, name)
        return self.input_per_mtok if value is None else value


@dataclass(frozen=True)
class LongContext:
    """Rates for a whole request whose prompt is above a threshold (Gemini 2.5 Pro over 200k)."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True)
class PriceRow:
    """One effective-dated price of a model, every dimension of it.

    The plain rates apply unless the provider served a priced service tier (its rates instead),
    or, failing that, the prompt was above long_context's threshold. request_fees are flat USD
    per request, charged when the request carries the option ("name=value", dotted for nested
    fields, e.g. "web_search_options.search_context_size=high")."""

    version: str  # "<model>@<valid_from>", kept on usage records
    valid_from: date
    input_per_mtok: Decimal
    output_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None  # None: cache hits cost the input price
    per_request: Decimal = Decimal(0)
    cache_write_5m_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    long_context: LongContext | None = None
    service_tiers: Mapping[str, Rates] = field(default_factory=dict)
    request_fees: Mapping[str, Decimal] = field(default_factory=dict)

    @cached_property  # asked for on every cost computed: built once per row
    def rates(self) -> Rates:
        return Rates(
            input_per_mtok=self.input_per_mtok,
            output_per_mtok=self.output_per_mtok,
            cached_input_per_mtok=self.cached_input_per_mtok,
            cache_write_5m_per_mtok=self.cache_write_5m_per_mtok,
            cache_write_1h_per_mtok=self.cache_write_1h_per_mtok,
        )

    def rates_for(self, prompt_tokens: int, service_tier: str = "") -> Rates:
        """The rates one request pays: its service tier's, else long context's, else plain."""
        if service_tier in self.service_tiers:
            return self.service_tiers[service_tier]
        if self.long_context is not None and prompt_tokens > self.long_context.above_input_tokens:
            return self.long_context.rates
        return self.rates

    def fees_for(self, options: frozenset[str]) -> Decimal:
        return self.per_request + sum(
            (fee for option, fee in self.request_fees.items() if option in options), Decimal(0)
        )


def parse_price_rows(
    spec: Mapping[str, Any], path: list[Any], complain: Complain, *, embeddings_only: bool
) -> tuple[PriceRow, ...]:
    """A model's price rows, ascending valid_from; each problem is reported with its path."""
    rows: list[PriceRow] = []
    for k, row in enumerate(spec["prices"]):
        here = [*path, "prices", k]
        try:
            valid_from = date.fromisoformat(row["valid_from"])
        except ValueError:
            complain([*here, "valid_from"], f"{row['valid_from']!r} is not a date (YYYY-MM-DD)")
            continue
        if rows and valid_from <= rows[-1].valid_from:
            complain([*here, "valid_from"], "valid_from must be strictly later than the row before")
        base = _rates(row)
        cached = base.cached_input_per_mtok
        if cached is not None and cached > base.input_per_mtok:
            complain([*here, "cached_input_per_mtok"], "cached input price exceeds the input price")
        if embeddings_only and "output_per_mtok" in row:
            complain([*here, "output_per_mtok"], "an embeddings-only model has no output price")
        if not embeddings_only and "output_per_mtok" not in row:
            complain(here, "a chat model needs output_per_mtok")
        long_context = None
        if "long_context" in row:
            long_context = LongContext(
                above_input_tokens=row["long_context"]["above_input_tokens"],
                rates=_rates(row["long_context"], base),
            )
        rows.append(
            PriceRow(
                version=f"{spec['id']}@{valid_from.isoformat()}",
                valid_from=valid_from,
                input_per_mtok=base.input_per_mtok,
                output_per_mtok=base.output_per_mtok,
                cached_input_per_mtok=base.cached_input_per_mtok,
                cache_write_5m_per_mtok=base.cache_write_5m_per_mtok,
                cache_write_1h_per_mtok=base.cache_write_1h_per_mtok,
                per_request=Decimal(row.get("per_request", "0")),
                long_context=long_context,
                service_tiers={
                    name: _rates(tier, base)
                    for name, tier in (row.get("service_tiers") or {}).items()
                },
                request_fees={
                    option: Decimal(fee) for option, fee in (row.get("request_fees") or {}).items()
                },
            )
        )
    return tuple(rows)


def _rates(spec: Mapping[str, Any], base: Rates | None = None) -> Rates:
    """The rates a price row (or one of its tiers, over the row's own) states."""

    def rate(name: str) -> Decimal | None:
        if name in spec:
            return Decimal(spec[name])
        return getattr(base, name) if base is not None else None

    return Rates(
        input_per_mtok=Decimal(spec["input_per_mtok"]),
        output_per_mtok=rate("output_per_mtok") or Decimal(0),
        cached_input_per_mtok=rate("cached_input_per_mtok"),
        cache_write_5m_per_mtok=rate("cache_write_5m_per_mtok"),
        cache_write_1h_per_mtok=rate("cache_write_1h_per_mtok"),
    )
