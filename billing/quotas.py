"""Monthly plan allowances: is this organisation over its plan's monthly requests or tokens?

`check_monthly_allowance(org)` is what the request pipeline calls before admitting a request.
Plans that bill overage are never refused here; their extra tokens go to Stripe's meter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from analytics.rollups import UsageTotals, usage_totals
from billing.accounts import current_period
from billing.limits import PlanLimits, limits_for_plan
from organizations.models import Organization


@dataclass(frozen=True)
class QuotaRefusal:
    status: int  # 429: wait for the next period (or upgrade)
    message: str
    plan: str
    limit: str  # "requests" or "tokens"
    retry_after: int  # seconds until the period ends


@dataclass(frozen=True)
class PeriodUsage:
    limits: PlanLimits
    start: datetime
    end: datetime
    totals: UsageTotals


def get_period_usage(org: Organization, now: datetime | None = None) -> PeriodUsage:
    now = now or timezone.now()
    start, end = current_period(org, now=now)
    return PeriodUsage(
        limits=limits_for_plan(org.plan), start=start, end=end, totals=usage_totals(org, start, now)
    )


def check_monthly_allowance(org: Organization, now: datetime | None = None) -> QuotaRefusal | None:
    """A refusal naming the plan when a blocking plan's monthly limit is used up, else None."""
    now = now or timezone.now()
    limits = limits_for_plan(org.plan)
    if limits.overage != "block" or (
        limits.monthly_requests is None and limits.monthly_tokens is None
    ):
        return None
    usage = get_period_usage(org, now)
    retry_after = max(1, int((usage.end - now).total_seconds()))
    checks = [
        ("requests", limits.monthly_requests, usage.totals.successful_requests),
        ("tokens", limits.monthly_tokens, usage.totals.tokens),
    ]
    for name, limit, used in checks:
        if limit is not None and used >= limit:
            return QuotaRefusal(
                status=429,
                message=(
                    f"The {limits.plan_name} plan allows {limit:,} {name} a month and this "
                    f"organization has used {used:,}. Upgrade the plan or wait for the next "
                    "billing period."
                ),
                plan=limits.plan,
                limit=name,
                retry_after=retry_after,
            )
    return None
