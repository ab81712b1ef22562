"""The usage API's report (`GET /api/dashboard/analytics`): totals and breakdowns of a period.

Read from the dashboard's cube (roll-ups for rolled-up hours, raw records after them), so the cost
does not grow with the organisation's history; the latency percentiles are those of the period's
latest requests (`dashboard_queries.LATENCY_SAMPLE`), one bounded index scan.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from analytics.dashboard_queries import (
    LATENCY_SAMPLE,
    Period,
    Usage,
    grouped,
    latest_latencies,
    totals,
    usage_cube,
)
from analytics.usage_queries import date_range, percentile
from organizations.models import Organization

COST_PLACES = Decimal("0.00000001")  # usage records keep 8 decimal places
BREAKDOWNS = ("model", "provider", "key", "day")
PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99))


def analytics_for_org(org: Organization, start: date | None, end: date | None) -> dict[str, Any]:
    since, until = date_range(start, end)
    period = Period(since.date(), (until - timedelta(days=1)).date())
    cube = usage_cube(org, period, dims=("day", "model", "provider", "key"))
    summary = _shape(totals(cube))
    latencies = sorted(latest_latencies(org, period))
    summary["latency_ms"] = {name: percentile(latencies, p) for name, p in PERCENTILES}
    summary["latency_sample"] = LATENCY_SAMPLE
    result: dict[str, Any] = {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "totals": summary,
    }
    for name in BREAKDOWNS:
        groups = sorted(grouped(cube, (name,)).items(), key=lambda item: _order(item[0][0]))
        result[f"by_{name}"] = [
            {name: _label(key[0]), **_shape(usage)} for key, usage in groups if usage.requests
        ]
    return result


def _shape(usage: Usage) -> dict[str, Any]:
    requests = usage.requests
    return {
        "requests": requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.tokens,
        "cost": str(usage.cost.quantize(COST_PLACES)),
        "error_rate": round(usage.errors / requests, 4) if requests else 0.0,
        "cache_hit_rate": round(usage.cache_hits / requests, 4) if requests else 0.0,
    }


def _order(value: Any) -> tuple:
    # Ascending, no value (a request without a key) last.
    return (value is None, value if value is not None else 0)


def _label(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
