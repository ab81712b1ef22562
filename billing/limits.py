"""What a plan allows: the values admission control (rate limits, quotas) enforces.

`limits_for_plan(slug)` is the one entry point. It reads the Plan table through a small
in-process cache (GATEWAY_PLAN_CACHE_SECONDS; saving a Plan clears this process's copy), so the
request pipeline can call it on every request without a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.plan_cache import cached_plans


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
    monthly_budget_usd: Decimal | None = None  # the plan's spend cap for the organisation
    allowed_models: frozenset[str] | None = None  # model ids and aliases; None = all
    overage: str = "block"  # "block" at the monthly limit, or "bill" it (metered)

    def allows_model(self, name: str) -> bool:
        return self.allowed_models is None or name in self.allowed_models


# Used when the Plan table has no "free" row or cannot be read: the safest answer.
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
    """The limits of the plan with this slug; unknown slugs get the Free plan's limits."""
    plans = cached_plans(_read_plans)
    return plans.get(slug) or plans.get("free") or FREE


def build_limits(plan) -> PlanLimits:
    """A Plan row as the frozen value the pipeline enforces."""
    return PlanLimits(
        plan=plan.slug,
        plan_name=plan.name,
        requests_per_minute=plan.requests_per_minute,
        requests_per_hour=plan.requests_per_hour,
        requests_per_day=plan.requests_per_day,
        tokens_per_minute=plan.tokens_per_minute,
        monthly_requests=plan.monthly_requests,
        monthly_tokens=plan.monthly_tokens,
        monthly_budget_usd=plan.monthly_budget_usd,
        allowed_models=frozenset(plan.allowed_models) if plan.allowed_models else None,
        overage=plan.overage,
    )


def _read_plans() -> dict[str, PlanLimits]:
    from billing.models import Plan  # the app registry is ready by the first request

    return {plan.slug: build_limits(plan) for plan in Plan.objects.all()}
