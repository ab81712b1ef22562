"""Usage of the current period against the plan: for the billing page, the usage API and the
plan-usage alert. The period is `billing.periods.current_period`; usage in it is
`analytics.rollups.usage_totals`, the same numbers admission starts its month from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from analytics.alert_rules import PlanUsage
from analytics.models import UsageRecord
from analytics.rollups import UsageTotals, usage_totals
from billing.limits import PlanLimits, limits_for_plan
from billing.periods import current_period
from organizations.models import Organization


@dataclass(frozen=True)
class PeriodUsage:
    limits: PlanLimits
    start: datetime
    end: datetime
    totals: UsageTotals


def get_period_usage(org: Organization, now: datetime | None = None) -> PeriodUsage:
    now = now or timezone.now()
    start, end = current_period(now)
    return PeriodUsage(
        limits=limits_for_plan(org.plan), start=start, end=end, totals=usage_totals(org, start, now)
    )


def list_plan_usage(now: datetime) -> list[PlanUsage]:
    """This period's usage of every organisation with records in it, against each monthly limit
    its plan sets (requests, tokens, budget): the source of the one plan-usage alert."""
    start, _ = current_period(now)
    active = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=now)
    org_ids = active.values_list("organization_id", flat=True).distinct().order_by()
    usage = []
    for org in Organization.objects.filter(pk__in=org_ids).order_by("pk"):
        period = get_period_usage(org, now)
        limits, totals = period.limits, period.totals
        for metric, used, limit in (
            ("requests", totals.successful_requests, limits.monthly_requests),
            ("tokens", totals.tokens, limits.monthly_tokens),
            ("spend", totals.cost, limits.monthly_budget_usd),
        ):
            if limit:
                usage.append(PlanUsage(org.pk, metric, Decimal(used), Decimal(limit)))
    return usage


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
        "limits": {
            "requests": limits.monthly_requests,
            "tokens": limits.monthly_tokens,
            "budget_usd": None
            if limits.monthly_budget_usd is None
            else str(limits.monthly_budget_usd),
        },
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
