"""E-mail owners when the organisation reaches 80% and 100% of a monthly limit, once per period."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import notifications
from billing.models import QuotaWarning
from billing.quotas import get_period_usage
from organizations.models import Organization


def send_quota_warnings(org: Organization, now: datetime | None = None) -> list[tuple[str, int]]:
    """The (limit, percent) warnings sent now; each is sent at most once per period."""
    usage = get_period_usage(org, now or timezone.now())
    checks = [
        ("requests", usage.limits.monthly_requests, usage.totals.successful_requests),
        ("tokens", usage.limits.monthly_tokens, usage.totals.tokens),
    ]
    sent = []
    for limit_name, limit, used in checks:
        if not limit:
            continue
        reached = [p for p in settings.GATEWAY_QUOTA_WARNING_PERCENTS if used * 100 >= limit * p]
        if not reached:
            continue
        percent = max(reached)  # one e-mail even when 80% and 100% are crossed together
        if _claim(org, usage.start, limit_name, reached):
            notifications.send_quota_warning_email(org, usage.limits.plan_name, limit_name, percent)
            sent.append((limit_name, percent))
    return sent


def _claim(org, period_start, limit_name: str, percents: list[int]) -> bool:
    """Record every reached threshold; True when the highest one is new."""
    new = False
    for percent in percents:
        try:
            with transaction.atomic():
                QuotaWarning.objects.create(
                    organization=org, period_start=period_start, limit=limit_name, percent=percent
                )
            new = new or percent == max(percents)
        except IntegrityError:
            continue
    return new
