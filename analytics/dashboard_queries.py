"""The dashboard's numbers: totals, breakdowns and daily series from the roll-ups.

Hours before the roll-up high-water mark are read from hourly roll-ups; records after it are read
raw and grouped the same way, so every figure is exact and no query scans the organisation's whole
history. A page asks for its period's "cube" once (two grouped queries) and sums it in memory.
Request lists and latency percentiles read raw records through bounded, indexed queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import Frequency, PendingRollup, UsageRecord, UsageRollup
from analytics.rollups import floor_day, floor_hour, get_fill_end
from analytics.usage_queries import percentile, records_for_org
from organizations.models import Organization

LATENCY_SAMPLE = 5_000  # percentiles are computed over at most this many latest requests
# dashboard name -> (roll-up field, raw record field)
DIMENSIONS = {
    "model": ("model", "requested_model"),
    "provider": ("provider", "provider"),
    "error_class": ("error_class", "error_class"),
    "key": ("api_key_id", "api_key_id"),
}
METRICS = [
    "requests",
    "errors",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost",
    "latency_ms_sum",
]


@dataclass
class Usage:
    """Totals of one group (or of everything) in a date range."""

    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost: Decimal = field(default_factory=lambda: Decimal(0))
    latency_ms_sum: int = 0

    def add(self, row: dict[str, Any]) -> None:
        """Add a grouped query's row (sums are None where no row matched)."""
        self.requests += row["requests"] or 0
        self.errors += row["errors"] or 0
        self.cache_hits += row["cache_hits"] or 0
        self.input_tokens += row["input_tokens"] or 0
        self.output_tokens += row["output_tokens"] or 0
        self.cached_input_tokens += row["cached_input_tokens"] or 0
        self.cost += Decimal(row["cost"] or 0)
        self.latency_ms_sum += row["latency_ms_sum"] or 0

    def merge(self, other: Usage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.cache_hits += other.cache_hits
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cost += other.cost
        self.latency_ms_sum += other.latency_ms_sum

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def success_rate(self) -> float | None:
        return (self.requests - self.errors) / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.requests if self.requests else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def until(self) -> datetime:
        return self.since + timedelta(days=(self.end - self.start).days + 1)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def last_days(days: int = 30, today: date | None = None) -> Period:
    today = today or timezone.now().date()
    return Period(today - timedelta(days=days - 1), today)


def _rollup_aggregates() -> dict[str, Any]:
    return {name: Sum(name) for name in METRICS}


def _raw_aggregates() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__gte=400)),
        "cache_hits": Count("id", filter=Q(cache_hit=True)),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "cached_input_tokens": Sum("cached_input_tokens"),
        "cost": Sum("cost"),
        "latency_ms_sum": Sum("latency_ms"),
    }


CUBE = ("day", "model", "provider", "error_class", "key")


def usage_cube(
    org: Organization,
    period: Period,
    filters: dict[str, Any] | None = None,
    dims: tuple[str, ...] = CUBE,
) -> dict[tuple, Usage]:
    """{(day, model, provider, error class, key id): Usage} over the period, in a few queries.

    Every figure of a page (totals, series, breakdowns) is then summed from this in memory: a
    period has at most days × models × providers × error classes × keys groups. Dimensions left
    out of `dims` are summed in SQL and read as None."""
    since, until = period.since, min(period.until, timezone.now())
    fill_end = get_fill_end()
    rolled_end = max(min(fill_end, floor_hour(until)) if fill_end else since, since)
    # An hour that received late records is read raw (with everything after it) until rebuilt.
    late = PendingRollup.objects.filter(hour__gte=since, hour__lt=rolled_end).order_by("hour")
    rolled_end = late.values_list("hour", flat=True).first() or rolled_end
    cube: dict[tuple, Usage] = defaultdict(Usage)
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "") and k in DIMENSIONS}
    # Whole days from the daily roll-ups, the rest of the last rolled day from the hourly ones.
    whole_days_end = max(floor_day(rolled_end), since)
    rollups = UsageRollup.objects.for_org(org).filter(
        **{DIMENSIONS[k][0]: v for k, v in filters.items()}
    )
    for frequency, start, end in (
        (Frequency.DAY, since, whole_days_end),
        (Frequency.HOUR, whole_days_end, rolled_end),
    ):
        if end > start:
            rows = rollups.filter(
                frequency=frequency, period_start__gte=start, period_start__lt=end
            )
            _collect(cube, rows, dims, 0, "period_start", _rollup_aggregates())
    raw = UsageRecord.objects.for_org(org).filter(created_at__gte=rolled_end, created_at__lt=until)
    raw = raw.filter(**{DIMENSIONS[k][1]: v for k, v in filters.items()})
    _collect(cube, raw, dims, 1, "created_at", _raw_aggregates())
    return dict(cube)


def _collect(cube, rows, dims, side: int, time_field: str, aggregates) -> None:
    fields = [
        ("day" if name == "day" else DIMENSIONS[name][side]) if name in dims else None
        for name in CUBE
    ]
    if "day" in dims:
        rows = rows.annotate(day=TruncDate(time_field))
    if not any(fields):
        cube[(None,) * len(CUBE)].add(rows.aggregate(**aggregates))
        return
    rows = rows.values(*[f for f in fields if f]).annotate(**aggregates)
    for row in rows.order_by():
        cube[tuple(row[f] if f else None for f in fields)].add(row)


def grouped(cube: dict[tuple, Usage], by: tuple[str, ...]) -> dict[tuple, Usage]:
    """The cube summed down to the `by` dimensions."""
    positions = [CUBE.index(name) for name in by]
    groups: dict[tuple, Usage] = defaultdict(Usage)
    for key, usage in cube.items():
        groups[tuple(key[i] for i in positions)].merge(usage)
    return dict(groups)


def totals(cube: dict[tuple, Usage]) -> Usage:
    return grouped(cube, ()).get((), Usage())


def daily_series(cube: dict[tuple, Usage], period: Period) -> list[dict[str, Any]]:
    """One point per day of the period (zeros included), for the charts."""
    by_day = grouped(cube, ("day",))
    series = []
    for day in period.days:
        usage = by_day.get((day,), Usage())
        series.append(
            {
                "day": day.isoformat(),
                "requests": usage.requests,
                "errors": usage.errors,
                "cost": float(usage.cost),  # chart coordinates only; money stays Decimal
            }
        )
    return series


def breakdown(cube: dict[tuple, Usage], dimension: str) -> list[dict]:
    """Rows of one dimension, largest cost (then requests) first, with each row's share."""
    groups = grouped(cube, (dimension,))
    total_cost = sum((u.cost for u in groups.values()), Decimal(0))
    total_requests = sum(u.requests for u in groups.values())
    rows = [
        {
            "value": key[0],
            "usage": usage,
            "cost_share": usage.cost / total_cost if total_cost else None,
            "request_share": usage.requests / total_requests if total_requests else None,
        }
        for key, usage in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["usage"].cost, r["usage"].requests), reverse=True)


def recent_latency(org: Organization, period: Period) -> dict[str, float | None]:
    """p50/p95 latency over the latest LATENCY_SAMPLE requests of the period: one backward
    index scan, the percentiles taken in Python."""
    values = sorted(latest_latencies(org, period))
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def latest_latencies(org: Organization, period: Period) -> list[int]:
    """Latency of the period's latest LATENCY_SAMPLE requests, newest first."""
    return list(
        UsageRecord.objects.for_org(org)
        .filter(created_at__gte=period.since, created_at__lt=period.until)
        .order_by("-created_at")
        .values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
    )


def request_log(
    org: Organization,
    filters: dict[str, Any],
    *,
    period: Period | None = None,
    before: str = "",
    size: int = 50,
) -> tuple[list[UsageRecord], str]:
    """A page of the request log, newest first, and the cursor of the next (older) page.

    Cursor paging ("older than this record") reads one index range however deep the page;
    there is no OFFSET and no COUNT over the organisation's history."""
    rows = records_for_org(org, filters).select_related("api_key").order_by("-created_at", "-id")
    if period is not None:
        rows = rows.filter(created_at__gte=period.since, created_at__lt=period.until)
    cursor = _parse_cursor(before)
    if cursor is not None:
        at, pk = cursor
        rows = rows.filter(created_at__lte=at).exclude(created_at=at, id__gte=pk)
    page = list(rows[: size + 1])
    next_cursor = _cursor(page[size - 1]) if len(page) > size else ""
    return page[:size], next_cursor


def _cursor(record: UsageRecord) -> str:
    return f"{record.created_at.isoformat()}_{record.pk}"


def _parse_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    at, _, pk = value.rpartition("_")
    try:
        moment, pk = datetime.fromisoformat(at), int(pk)
    except ValueError:
        return None
    return (moment, pk) if timezone.is_aware(moment) else None


def has_traffic(org: Organization) -> bool:
    return UsageRecord.objects.for_org(org).exists()


def export_rows(cube: dict[tuple, Usage], key_names: dict[int, str]):
    """CSV rows: one per day × model × provider × error class × key."""
    for (day, model, provider, error_class, key_id), usage in sorted(
        cube.items(), key=lambda item: tuple(str(v) for v in item[0])
    ):
        yield {
            "day": day.isoformat() if day else "",
            "model": model,
            "provider": provider,
            "error_class": error_class,
            "api_key_id": key_id or "",
            "api_key": key_names.get(key_id, ""),
            "requests": usage.requests,
            "errors": usage.errors,
            "cache_hits": usage.cache_hits,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cost_usd": usage.cost.quantize(Decimal("0.00000001")),
            "mean_latency_ms": round(usage.mean_latency_ms or 0),
        }
