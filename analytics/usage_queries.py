"""Queries behind the usage API and the dashboard: one place, always scoped to an organisation."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import UsageRecord
from analytics.rollups import usage_totals
from organizations.models import Organization

BREAKDOWNS = {
    "model": "requested_model",
    "provider": "provider",
    "key": "api_key_id",
    "day": "day",
}
COST_PLACES = Decimal("0.00000001")  # usage records keep 8 decimal places
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


class PercentileDisc(Aggregate):
    """PostgreSQL's percentile_disc: the nearest-rank percentile, computed in the database."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=fraction, **extra)


PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))


def latency_percentiles(rows) -> dict[str, float | None]:
    """p50/p95/p99 of latency: in SQL on PostgreSQL; in Python on the embedded SQLite."""
    if connection.vendor == "postgresql":
        found = rows.aggregate(
            **{name: PercentileDisc("latency_ms", p / 100) for name, p in PERCENTILES}
        )
        return {name: None if v is None else float(v) for name, v in found.items()}
    values = sorted(rows.values_list("latency_ms", flat=True))
    return {name: percentile(values, p) for name, p in PERCENTILES}


def percentile(sorted_values: list[int], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _period_summary(org: Organization, since: datetime, until: datetime) -> dict[str, Any]:
    """The totals come from the one definition of usage in a period (roll-ups and raw rows)."""
    return _shape(vars(usage_totals(org, since, until)))


def _shape(totals: dict[str, Any]) -> dict[str, Any]:
    requests = totals["requests"] or 0
    input_tokens, output_tokens = totals["input_tokens"] or 0, totals["output_tokens"] or 0
    return {
        "requests": requests,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost": str(Decimal(totals["cost"] or 0).quantize(COST_PLACES)),
        "error_rate": round(totals["errors"] / requests, 4) if requests else 0.0,
        "cache_hit_rate": round(totals["cache_hits"] / requests, 4) if requests else 0.0,
    }


def analytics_for_org(org: Organization, start: date | None, end: date | None) -> dict[str, Any]:
    since, until = date_range(start, end)
    rows = records_for_org(org).filter(created_at__gte=since, created_at__lt=until)
    summary = _period_summary(org, since, until)
    summary["latency_ms"] = latency_percentiles(rows)
    result: dict[str, Any] = {
        "start": since.date().isoformat(),
        "end": (until - timedelta(days=1)).date().isoformat(),
        "totals": summary,
    }
    annotated = rows.annotate(day=TruncDate("created_at"))
    for name, field in BREAKDOWNS.items():
        groups = (
            annotated.values(field)
            .annotate(
                requests=Count("id"),
                input_tokens=Sum("input_tokens"),
                output_tokens=Sum("output_tokens"),
                cost=Sum("cost"),
                errors=Count("id", filter=Q(status__gte=400)),
                cache_hits=Count("id", filter=Q(cache_hit=True)),
            )
            .order_by(field)
        )
        result[f"by_{name}"] = [{name: _label(group[field]), **_shape(group)} for group in groups]
    return result


def _label(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
