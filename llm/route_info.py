"""The record of one routed call: every attempt, which candidate served, what it is billed so
far, and the attempt still being waited on. The executor fills it in; the edge reads it for
headers, logs and settlement."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from llm.catalog import ModelEntry
from llm.charges import Charge, UsageBound, charge_for
from llm.prices import PriceRow
from llm.types import ChatRequest, Usage

# Attempts skipped without a call: the provider's circuit is open, or it asked us to wait.
SKIPPED = frozenset({"circuit_open", "backing_off"})


class Plan(Protocol):
    """What a route record starts from (llm.routing.RoutePlan)."""

    requested: str
    alias: str | None
    reason: str

    def candidate_ids(self) -> list[str]: ...


@dataclass
class Attempt:
    provider: str
    model: str  # gateway model id
    upstream_model: str
    error_kind: str | None = None  # None: it answered; one of SKIPPED: skipped without a call
    status: int | None = None
    message: str = ""
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class InFlight:
    """The attempt being waited on: what it would bill if it never answers (its prompt,
    estimated), at the price row chosen when it was dispatched."""

    model: ModelEntry
    price: PriceRow
    bound: UsageBound
    estimate: Usage
    request: ChatRequest | None = None

    def estimated_charge(self) -> Charge:
        return charge_for(self.model, self.price, self.estimate, self.bound, self.request)


@dataclass
class RouteInfo:
    requested: str
    alias: str | None
    reason: str
    candidates: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    served_provider: str | None = None
    served_model: str | None = None
    upstream_model: str | None = None
    upstream_ms: float = 0.0  # time spent waiting on upstreams, all attempts, no backoff
    ttft_ms: float | None = None  # streams: first event of the attempt that served
    dropped: dict[str, str] = field(default_factory=dict)  # model id -> dropped parameters
    charge: Charge | None = None  # the serving attempt's, once its usage is known
    # A non-streamed attempt still running when the deadline passed or the caller left; it
    # resolves to (result, Charge) if the provider answers after all.
    pending: asyncio.Future | None = None
    in_flight: InFlight | None = None  # the attempt being waited on, if any

    @classmethod
    def for_plan(cls, plan: Plan) -> RouteInfo:
        return cls(plan.requested, plan.alias, plan.reason, plan.candidate_ids())

    def providers_tried(self) -> list[str]:
        return [a.provider for a in self.attempts if a.error_kind not in SKIPPED]

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Gateway-Route-Alias": self.alias or "",
            "X-Gateway-Route-Reason": self.reason.encode("ascii", "replace").decode(),
            "X-Gateway-Candidates": ", ".join(self.candidates),
            "X-Gateway-Attempts": str(len(self.providers_tried())),
        }
        if self.served_provider:
            headers["X-Gateway-Provider"] = self.served_provider
            headers["X-Gateway-Model"] = self.served_model or ""
            dropped = self.dropped.get(self.served_model or "")
            if dropped:
                headers["X-Gateway-Params-Dropped"] = dropped.encode("ascii", "replace").decode()
        return headers
