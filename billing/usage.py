"""The billing page's numbers: this period's usage against the plan, and a projection."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from billing.quotas import get_period_usage
from organizations.models import Organization


def describe_period_usage(org: Organization, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    usage = get_period_usage(org, now)
    totals, limits = usage.totals, usage.limits
    elapsed = max((now - usage.start).total_seconds(), 1.0)
    length = (usage.end - usage.start).total_seconds()
    scale = Decimal(length) / Decimal(elapsed)

    def project(value: int) -> int:
        return int((Decimal(value) * scale).to_integral_value(ROUND_HALF_UP))

    return {
        "plan": limits.plan,
        "plan_name": limits.plan_name,
        "period_start": usage.start,
        "period_end": usage.end,
        "requests": totals.successful_requests,
        "failed_requests": totals.errors,
        "tokens": totals.tokens,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cost": str(totals.cost.quantize(Decimal("0.000001"))),
        "limits": {"requests": limits.monthly_requests, "tokens": limits.monthly_tokens},
        "percent": {
            "requests": percent_of(totals.successful_requests, limits.monthly_requests),
            "tokens": percent_of(totals.tokens, limits.monthly_tokens),
        },
        "projected": {
            "requests": project(totals.successful_requests),
            "tokens": project(totals.tokens),
            "cost": str((totals.cost * scale).quantize(Decimal("0.01"), ROUND_HALF_UP)),
        },
        "overage": limits.overage,
    }


def percent_of(used: int, limit: int | None) -> str | None:
    if not limit:
        return None
    return str((Decimal(used) * 100 / Decimal(limit)).quantize(Decimal("0.1"), ROUND_HALF_UP))
