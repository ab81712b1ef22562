"""How a call ended, and what it is billed: one immutable Outcome per call.

Every way out builds an Outcome through `outcome()`: served, cut by the upstream, failed, client
gone, deadline passed, process stopping. It carries the route and its attempts, the paid upstream
answers (`Charge`: usage by token class as reported, bounded to what the request could produce,
at the price row chosen once when the attempt was dispatched), the billing policy that applied,
the cost (computed here, once) and the timings. The edge settles it; nothing else computes money.

Billing policy per way out (BillingReason):
- reported: the provider's own counts, every class (cache reads/writes, reasoning, tool-use).
- estimated: the provider reported nothing; our estimate, flagged on the row.
- upstream_cut / client_gone / stopping: what the provider had reported until then, every class,
  and for the numbers it had not reported yet, an estimate from what arrived (flagged).
- deadline_late_answer: our deadline passed after dispatch, the provider still answered within
  the grace period: its reported counts. deadline_estimated: it did not; the prompt (estimated)
  and whatever output had arrived, flagged.
- repair_failed: structured output that never validated, or whose repair call failed: every
  paid attempt.
- cache_hit, not_dispatched, upstream_error, internal_error: nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from llm.catalog import ModelEntry, PriceRow
from llm.costs import compute_cost, request_options, sum_usage
from llm.tokens import inputs_upper_bound, prompt_upper_bound
from llm.types import ChatRequest, Usage

if TYPE_CHECKING:
    from llm.failover import RouteInfo


class Ending(StrEnum):
    SERVED = "served"
    UPSTREAM_CUT = "upstream_cut"
    FAILED = "failed"
    CLIENT_GONE = "client_gone"
    DEADLINE = "deadline"
    STOPPING = "stopping"


class BillingReason(StrEnum):
    REPORTED = "reported"
    ESTIMATED = "estimated"
    UPSTREAM_CUT = "upstream_cut"
    CLIENT_GONE = "client_gone"
    STOPPING = "stopping"
    DEADLINE_LATE_ANSWER = "deadline_late_answer"
    DEADLINE_ESTIMATED = "deadline_estimated"
    REPAIR_FAILED = "repair_failed"
    CACHE_HIT = "cache_hit"
    NOT_DISPATCHED = "not_dispatched"
    UPSTREAM_ERROR = "upstream_error"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class UsageBound:
    """The most one upstream call can produce: its prompt's upper bound (UTF-8 bytes), the
    tool-use prompt the model may add (its context window), and the output cap sent."""

    prompt: int
    output: int
    tool_prompt: int

    @classmethod
    def for_chat(cls, model: ModelEntry, request: ChatRequest) -> UsageBound:
        prompt = min(
            prompt_upper_bound(request.messages, request.tools, request.response_format),
            model.context_window,
        )
        cap = request.max_tokens or model.max_output_tokens or model.context_window
        return cls(prompt=prompt, output=cap, tool_prompt=model.context_window)

    @classmethod
    def for_inputs(cls, model: ModelEntry, inputs: list[str]) -> UsageBound:
        prompt = min(inputs_upper_bound(inputs), model.context_window * max(len(inputs), 1))
        return cls(prompt=prompt, output=0, tool_prompt=0)


def bound_usage(usage: Usage, bound: UsageBound) -> Usage:
    """usage with every class cut to what the request could have produced."""
    prompt = min(max(usage.input_tokens, 0), bound.prompt)
    output = min(max(usage.output_tokens, 0), bound.output)
    cached = min(max(usage.cached_input_tokens, 0), prompt)
    write_1h = min(max(usage.cache_write_1h_tokens, 0), prompt - cached)
    write_5m = min(max(usage.cache_write_5m_tokens, 0), prompt - cached - write_1h)

    def units(value: int | None, most: int) -> int | None:
        return None if value is None else min(max(value, 0), most)

    return dataclasses.replace(
        usage,
        input_tokens=prompt,
        output_tokens=output,
        cached_input_tokens=cached,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=min(max(usage.reasoning_tokens, 0), output),
        tool_use_prompt_tokens=min(max(usage.tool_use_prompt_tokens, 0), bound.tool_prompt),
        billed_input_units=units(usage.billed_input_units, bound.prompt + bound.tool_prompt),
        billed_output_units=units(usage.billed_output_units, bound.output),
    )


@dataclass(frozen=True)
class Charge:
    """One paid upstream answer: bounded usage at the price row chosen when it was dispatched."""

    model: str  # the gateway's model id
    price: PriceRow
    usage: Usage  # what is billed
    reported: Usage  # as the provider reported it; differs from usage when it was bounded
    options: frozenset[str] = frozenset()
    cost: Decimal = Decimal(0)

    @property
    def is_anomalous(self) -> bool:
        return self.usage != self.reported


def charge_for(
    model: ModelEntry,
    price: PriceRow,
    reported: Usage,
    bound: UsageBound,
    request: ChatRequest | None = None,
) -> Charge:
    usage = bound_usage(reported, bound)
    options = request_options(request)
    return Charge(
        model=model.id,
        price=price,
        usage=usage,
        reported=reported,
        options=options,
        cost=compute_cost(price, usage, options),
    )


@dataclass(frozen=True)
class Outcome:
    """How one call ended and what it is billed. Built once, read by every consumer."""

    ending: Ending
    billing_reason: BillingReason
    status: int  # the HTTP status we answered with
    error_class: str = ""
    route: RouteInfo | None = None
    charges: tuple[Charge, ...] = ()
    usage: Usage = field(default_factory=Usage)  # billed, summed over the charges
    reported: Usage = field(default_factory=Usage)  # as reported, summed
    cost: Decimal = Decimal(0)
    price_version: str = ""
    ttft_ms: float | None = None
    upstream_ms: float = 0.0
    cache_hit: bool = False

    @property
    def is_anomalous(self) -> bool:
        """An upstream reported more than the request could produce; it was bounded."""
        return any(charge.is_anomalous for charge in self.charges)

    @property
    def dispatched(self) -> bool:
        """Did any provider get the request (then its usage is charged, even zero)?"""
        route = self.route
        return bool(self.charges) or (
            route is not None
            and not self.cache_hit
            and (route.served_provider is not None or bool(route.providers_tried()))
        )


def outcome(
    ending: Ending,
    billing_reason: BillingReason,
    *,
    status: int = 200,
    error_class: str = "",
    route: RouteInfo | None = None,
    charges: tuple[Charge, ...] = (),
    ttft_ms: float | None = None,
    cache_hit: bool = False,
) -> Outcome:
    """The one constructor: sums the charges, their cost and the price versions."""
    versions = dict.fromkeys(charge.price.version for charge in charges)
    return Outcome(
        ending=ending,
        billing_reason=billing_reason,
        status=status,
        error_class=error_class,
        route=route,
        charges=charges,
        usage=sum_usage(c.usage for c in charges) if charges else Usage(),
        reported=sum_usage(c.reported for c in charges) if charges else Usage(),
        cost=sum((c.cost for c in charges), Decimal(0)),
        price_version="+".join(versions),
        ttft_ms=ttft_ms if ttft_ms is not None else (route.ttft_ms if route else None),
        upstream_ms=route.upstream_ms if route is not None else 0.0,
        cache_hit=cache_hit,
    )
