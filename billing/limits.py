"""What a plan allows: the values admission control (rate limits, quotas) enforces.

`limits_for_plan(slug)` is the one entry point; the billing app backs it with the Plan table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PlanLimits:
    plan: str  # slug, e.g. "free"
    plan_name: str  # e.g. "Free"
    requests_per_minute: int | None = None  # None = unlimited
    requests_per_hour: int | None = None
    requests_per_day: int | None = None
    tokens_per_minute: int | None = None
    monthly_requests: int | None = None
    monthly_tokens: int | None = None
    monthly_budget_usd: Decimal | None = None  # optional spend cap for the organisation
    allowed_models: frozenset[str] | None = None  # model ids and aliases; None = all
    overage: str = "block"  # "block" at the monthly limit, or "bill" it (metered)

    def allows_model(self, name: str) -> bool:
        return self.allowed_models is None or name in self.allowed_models


FREE = PlanLimits(
    plan="free",
    plan_name="Free",
    requests_per_minute=20,
    requests_per_hour=300,
    requests_per_day=1_000,
    tokens_per_minute=20_000,
    monthly_requests=1_000,
    monthly_tokens=50_000,
)


def limits_for_plan(slug: str) -> PlanLimits:
    # Until plans live in the database, every organisation gets the Free plan's limits.
    return FREE
