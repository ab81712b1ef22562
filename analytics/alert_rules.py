"""The alert rules: each looks at the current state and returns the conditions firing right now.

A rule knows nothing about notifications or deduplication (analytics/alerts.py does that): it only
answers "what is wrong at `now`?" as a list of `Condition`s with stable keys.

Inputs that other apps own are read through settings-named callables, so they can be swapped
(and fed in tests) without this module importing them:
- GATEWAY_ALERT_PROVIDER_STATES: `() -> {provider: "up" | "degraded" | "down"}`. The default infers
  states from recent usage records; point it at the llm core's health module once that exists.
- GATEWAY_ALERT_PLAN_USAGE: `(now) -> [PlanUsage]`. The default is `billing.usage.list_plan_usage`:
  the current period's usage (the one definition) against each monthly limit of the plan. This
  alert is the gateway's only 80%/100% warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q
from django.utils.module_loading import import_string

from analytics.models import AlertKind, DeadLetterUsage, UsageRecord


@dataclass(frozen=True)
class Condition:
    kind: str
    key: str
    title: str
    detail: str
    action: str
    organization_id: int | None = None
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PlanUsage:
    organization_id: int
    metric: str  # requests | tokens | spend
    used: Decimal
    limit: Decimal


def _window_start(now: datetime) -> datetime:
    return now - timedelta(minutes=settings.GATEWAY_ALERT_WINDOW_MINUTES)


# Provider down -------------------------------------------------------------------------------


def provider_states_from_usage() -> dict[str, str]:
    """Default provider states: "down" when every request of the window to it failed with a 5xx
    (and there were at least GATEWAY_ALERT_PROVIDER_DOWN_MIN_REQUESTS), else "up"."""
    from django.utils import timezone

    rows = (
        UsageRecord.objects.filter(created_at__gte=_window_start(timezone.now()))
        .exclude(provider="")
        .values("provider")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status__gte=500)))
    )
    minimum = settings.GATEWAY_ALERT_PROVIDER_DOWN_MIN_REQUESTS
    return {
        row["provider"]: "down" if minimum <= row["total"] == row["failed"] else "up"
        for row in rows
    }


def evaluate_provider_down(now: datetime) -> list[Condition]:
    read_states: Callable[[], dict[str, str]] = import_string(
        settings.GATEWAY_ALERT_PROVIDER_STATES
    )
    return [
        Condition(
            kind=AlertKind.PROVIDER_DOWN,
            key=f"provider_down:{provider}",
            title=f"Provider {provider} is down",
            detail=f"Health checks and recent requests to {provider} are failing.",
            action=(
                f"Check {provider}'s status page and the provider key. Traffic fails over to other "
                "deployments where the catalogue has them; consider disabling the provider."
            ),
            context={"provider": provider},
        )
        for provider, state in sorted(read_states().items())
        if state == "down"
    ]


# Error rate ----------------------------------------------------------------------------------


def evaluate_error_rate(now: datetime) -> list[Condition]:
    threshold = Decimal(str(settings.GATEWAY_ALERT_ERROR_RATE))
    minimum = settings.GATEWAY_ALERT_ERROR_RATE_MIN_REQUESTS
    rows = (
        UsageRecord.objects.filter(created_at__gte=_window_start(now), created_at__lte=now)
        .exclude(provider="")
        .values("provider")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status__gte=500)))
        .order_by("provider")
    )
    conditions = []
    for row in rows:
        if row["total"] < minimum:
            continue
        rate = Decimal(row["failed"]) / Decimal(row["total"])
        if rate <= threshold:
            continue
        provider = row["provider"]
        conditions.append(
            Condition(
                kind=AlertKind.ERROR_RATE,
                key=f"error_rate:{provider}",
                title=f"Error rate {rate:.0%} on {provider}",
                detail=(
                    f"{row['failed']} of {row['total']} requests via {provider} failed with a "
                    f"5xx in the last {settings.GATEWAY_ALERT_WINDOW_MINUTES} minutes "
                    f"(threshold {threshold:.0%})."
                ),
                action=(
                    "Look at the error classes in the usage records and the provider's status; "
                    "check recent deploys and provider keys."
                ),
                context={"provider": provider, "failed": row["failed"], "total": row["total"]},
            )
        )
    return conditions


# Rate-limit refusals spiking -----------------------------------------------------------------


def evaluate_rate_limit_spike(now: datetime) -> list[Condition]:
    """Counts usage records answered 429 (the pipeline records refused requests too)."""
    limit = settings.GATEWAY_ALERT_RATE_LIMIT_SPIKE
    rows = (
        UsageRecord.objects.filter(
            created_at__gte=_window_start(now), created_at__lte=now, status=429
        )
        .values("organization_id")
        .annotate(refused=Count("id"))
        .filter(refused__gte=limit)
        .order_by("organization_id")
    )
    return [
        Condition(
            kind=AlertKind.RATE_LIMIT_SPIKE,
            key=f"rate_limit_spike:{row['organization_id']}",
            title="Many requests refused by rate limits",
            detail=(
                f"{row['refused']} requests were refused with 429 in the last "
                f"{settings.GATEWAY_ALERT_WINDOW_MINUTES} minutes."
            ),
            action=(
                "Slow the client down (honour Retry-After), spread load over more API keys with "
                "their own limits, or move to a plan with higher limits."
            ),
            organization_id=row["organization_id"],
            context={"refused": row["refused"]},
        )
        for row in rows
    ]


# Plan usage ----------------------------------------------------------------------------------


PLAN_THRESHOLDS = (80, 100)


def evaluate_plan_usage(now: datetime) -> list[Condition]:
    read_usage: Callable[[datetime], list[PlanUsage]] = import_string(
        settings.GATEWAY_ALERT_PLAN_USAGE
    )
    period = now.strftime("%Y-%m")
    conditions = []
    for usage in read_usage(now):
        percent = usage.used * 100 / usage.limit
        for threshold in PLAN_THRESHOLDS:
            if percent < threshold:
                continue
            at_limit = threshold == 100
            conditions.append(
                Condition(
                    kind=AlertKind.PLAN_USAGE,
                    key=f"plan_usage:{usage.organization_id}:{period}:{usage.metric}:{threshold}",
                    title=f"Plan {usage.metric} at {threshold}% this month",
                    detail=(
                        f"{usage.used.normalize():f} of {usage.limit.normalize():f} "
                        f"{usage.metric} used in {period} ({percent:.0f}%)."
                    ),
                    action=(
                        "On a plan that blocks at its limit, requests are refused until the "
                        "period ends (on one that bills overage, further tokens are billed): "
                        "upgrade the plan or raise the budget to continue."
                        if at_limit
                        else "Upgrade the plan or reduce usage before the limit is reached."
                    ),
                    organization_id=usage.organization_id,
                    context={"metric": usage.metric, "threshold": threshold, "period": period},
                )
            )
    return conditions


# Usage records the database refused ---------------------------------------------------------


def evaluate_usage_dead_letters(now: datetime) -> list[Condition]:
    """Gateway-wide: usage records are waiting in the dead-letter table."""
    waiting = DeadLetterUsage.objects.filter(written_at__isnull=True).count()
    if not waiting:
        return []
    return [
        Condition(
            kind=AlertKind.USAGE_DEAD_LETTER,
            key="usage_dead_letter",
            title=f"{waiting} usage records refused by the database",
            detail=(
                "These requests were served but their usage rows could not be written; every "
                "other row was. They are unbilled until written."
            ),
            action=(
                "Open Admin → Dead-letter usage records, read each error, fix the cause (a "
                "migration, a deleted key) and retry the records from there."
            ),
            context={"waiting": waiting},
        )
    ]


# The registry the evaluator runs. notify_recovery: send a "resolved" message when it ends.
RULES: dict[str, tuple[Callable[[datetime], list[Condition]], bool]] = {
    AlertKind.PROVIDER_DOWN: (evaluate_provider_down, True),
    AlertKind.ERROR_RATE: (evaluate_error_rate, True),
    AlertKind.RATE_LIMIT_SPIKE: (evaluate_rate_limit_spike, True),
    AlertKind.PLAN_USAGE: (evaluate_plan_usage, False),
    AlertKind.USAGE_DEAD_LETTER: (evaluate_usage_dead_letters, True),
}
