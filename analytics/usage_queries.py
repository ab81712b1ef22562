"""Queries behind the usage API and the dashboard: one place, always scoped to an organisation."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from analytics.models import UsageRecord
from organizations.models import Organization

FILTERS = {"model": "requested_model", "provider": "provider", "key": "api_key_id"}


def records_for_org(org: Organization, filters: dict[str, Any] | None = None):
    rows = UsageRecord.objects.for_org(org)
    for name, value in (filters or {}).items():
        if name == "status":
            rows = rows.filter(_status_filter(value))
        elif value not in (None, ""):
            rows = rows.filter(**{FILTERS[name]: value})
    return rows


def _status_filter(value: str) -> Q:
    """status=200, or a class: 2xx, 4xx, 5xx, or "error" (anything not 2xx)."""
    if value == "error":
        return ~Q(status__range=(200, 299))
    if len(value) == 3 and value.endswith("xx") and value[0].isdigit():
        low = int(value[0]) * 100
        return Q(status__range=(low, low + 99))
    return Q(status=int(value))


def date_range(start: date | None, end: date | None) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in UTC; the last 30 days by default."""
    today = timezone.now().date()
    end = end or today
    start = start or end - timedelta(days=29)
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def percentile(sorted_values: list[int], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])
