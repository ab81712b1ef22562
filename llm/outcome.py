"""How a call ended, and what it is billed: one immutable Outcome per call.

Every way out builds an Outcome through `outcome()`: served, cut by the upstream, failed, client
gone, deadline passed, process stopping. It carries the route and its attempts, the paid upstream
answers (`Charge`, llm/charges.py: usage by token class as reported, bounded to what the request
could produce, at the price row chosen once when the attempt was dispatched), the billing policy
that applied, the cost (summed here, once) and the timings. The edge settles it; nothing else
computes money.

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

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from llm.charges import Charge
from llm.costs import sum_usage
from llm.types import Usage

if TYPE_CHECKING:
    from llm.route_info import RouteInfo


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
