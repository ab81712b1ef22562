"""Usage roll-ups: hourly and daily totals per organisation × model × API key × provider × error
class.

`roll_up_usage(now)` advances a high-water mark (RollupFillState) one whole hour at a time; each
hour is rebuilt from the raw records and committed together with the mark, so a killed worker
loses nothing and a re-run of any window (`roll_up_window`) gives the same totals. It then
rebuilds every hour below the mark that received a late record (PendingRollup, marked by the
writer in the transaction that inserted it), and that hour's day.

`usage_totals(org, start, end)` is the one definition of an organisation's usage between two
instants: roll-ups for rebuilt hours below the mark, raw records for everything else (hours above
the mark, hours waiting for a rebuild, and the ragged ends of the range). It is exact at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from analytics.models import (
    Frequency,
    PendingRollup,
    RollupFillState,
    UsageRecord,
    UsageRollup,
)
from organizations.models import Organization

FILL_STATE = "usage"
HOUR = timedelta(hours=1)
SUMMED = ["input_tokens", "output_tokens", "cached_input_tokens", "cost"]
# The dimensions of a roll-up row, as named on the raw records.
DIMENSIONS = ["organization_id", "api_key_id", "requested_model", "provider", "error_class"]


@dataclass
class UsageTotals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_hits: int = 0
    cost: Decimal = field(default_factory=lambda: Decimal("0"))

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def successful_requests(self) -> int:
        return self.requests - self.errors

    def add(self, row: dict) -> None:
        self.requests += row.get("requests") or 0
        self.errors += row.get("errors") or 0
        self.input_tokens += row.get("input_tokens") or 0
        self.output_tokens += row.get("output_tokens") or 0
        self.cached_input_tokens += row.get("cached_input_tokens") or 0
        self.cache_hits += row.get("cache_hits") or 0
        self.cost += Decimal(row.get("cost") or 0)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def get_fill_end() -> datetime | None:
    state = RollupFillState.objects.filter(name=FILL_STATE).first()
    return state.end if state else None


def roll_up_usage(now: datetime | None = None, max_hours: int = 24 * 7) -> datetime | None:
    """Roll up every complete hour not yet rolled up (up to max_hours per run); returns the mark."""
    now = now or timezone.now()
    lag = timedelta(seconds=settings.GATEWAY_ROLLUP_LAG_SECONDS)
    target = floor_hour(now - lag)
    start = get_fill_end()
    if start is None:
        first = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True)
        first_at = first.first()
        start = floor_hour(first_at) if first_at else target
    hours = 0
    while start < target and hours < max_hours:
        with transaction.atomic():
            _rebuild_marked_hour(start)
            RollupFillState.objects.update_or_create(
                name=FILL_STATE, defaults={"end": start + HOUR, "updated_at": timezone.now()}
            )
        start += HOUR
        hours += 1
    if get_fill_end() is None:
        RollupFillState.objects.create(name=FILL_STATE, end=target)
    fill_end = get_fill_end()
    roll_up_late_records(fill_end)
    return fill_end


def roll_up_late_records(fill_end: datetime | None = None) -> int:
    """Rebuild every hour below the mark that received records since it was rolled up."""
    fill_end = fill_end or get_fill_end()
    if fill_end is None:
        return 0
    late = PendingRollup.objects.filter(hour__lt=fill_end).order_by("hour")
    hours = list(late.values_list("hour", flat=True))
    for hour in hours:
        with transaction.atomic():
            _rebuild_marked_hour(hour)
    return len(hours)


def _rebuild_marked_hour(hour: datetime) -> None:
    # Read the mark first: a record committed after this read changes the token, so the delete
    # below misses and the hour is rebuilt again on the next run.
    token = PendingRollup.objects.filter(hour=hour).values_list("token", flat=True).first()
    _rebuild_hour(hour)
    if token is not None:
        PendingRollup.objects.filter(hour=hour, token=token).delete()


def roll_up_window(start: datetime, end: datetime) -> None:
    """Rebuild every hour in [start, end) (and its days) from the raw records."""
    hour = floor_hour(start)
    while hour < end:
        with transaction.atomic():
            _rebuild_marked_hour(hour)
        hour += HOUR


def _aggregates():
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__gte=400)),
        "cache_hits": Count("id", filter=Q(cache_hit=True)),
        "latency_ms_sum": Sum("latency_ms"),
        **{name: Sum(name) for name in SUMMED},
    }


def _rebuild_hour(hour: datetime) -> None:
    records = UsageRecord.objects.filter(created_at__gte=hour, created_at__lt=hour + HOUR)
    rows = records.values(*DIMENSIONS).annotate(**_aggregates())
    UsageRollup.objects.filter(frequency=Frequency.HOUR, period_start=hour).delete()
    UsageRollup.objects.bulk_create(
        _rollup(row, row["requested_model"], Frequency.HOUR, hour) for row in rows.order_by()
    )
    _rebuild_day(floor_day(hour))


def _rebuild_day(day: datetime) -> None:
    hourly = UsageRollup.objects.filter(
        frequency=Frequency.HOUR, period_start__gte=day, period_start__lt=day + timedelta(days=1)
    )
    rows = hourly.values("organization_id", "api_key_id", "model", "provider", "error_class")
    rows = rows.annotate(
        requests=Sum("requests"),
        errors=Sum("errors"),
        cache_hits=Sum("cache_hits"),
        latency_ms_sum=Sum("latency_ms_sum"),
        **{name: Sum(name) for name in SUMMED},
    )
    UsageRollup.objects.filter(frequency=Frequency.DAY, period_start=day).delete()
    UsageRollup.objects.bulk_create(
        _rollup(row, row["model"], Frequency.DAY, day) for row in rows.order_by()
    )


def _rollup(row: dict, model: str, frequency: str, start: datetime) -> UsageRollup:
    return UsageRollup(
        organization_id=row["organization_id"],
        api_key_id=row["api_key_id"],
        model=model,
        provider=row["provider"],
        error_class=row["error_class"],
        frequency=frequency,
        period_start=start,
        requests=row["requests"] or 0,
        errors=row["errors"] or 0,
        cache_hits=row["cache_hits"] or 0,
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        cached_input_tokens=row["cached_input_tokens"] or 0,
        cost=row["cost"] or Decimal("0"),
        latency_ms_sum=row["latency_ms_sum"] or 0,
    )


def usage_totals(
    org: Organization | int, start: datetime, end: datetime, api_key_id: int | None = None
) -> UsageTotals:
    """Exact totals of the organisation's records with start <= created_at < end (of one of its
    API keys with `api_key_id`)."""
    totals = UsageTotals()
    for hourly in usage_by_hour(org, start, end, api_key_id).values():
        totals.add(vars(hourly))
    return totals


def usage_by_hour(
    org: Organization | int, start: datetime, end: datetime, api_key_id: int | None = None
) -> dict[datetime, UsageTotals]:
    """`usage_totals` split by the hour the records fall in (hours without records are absent)."""
    org_id = org if isinstance(org, int) else org.pk
    raw = UsageRecord.objects.filter(organization_id=org_id)
    rolled = UsageRollup.objects.filter(organization_id=org_id, frequency=Frequency.HOUR)
    if api_key_id is not None:
        raw, rolled = raw.filter(api_key_id=api_key_id), rolled.filter(api_key_id=api_key_id)
    first_hour = floor_hour(start) if floor_hour(start) == start else floor_hour(start) + HOUR
    fill_end = get_fill_end()
    rolled_end = min(fill_end, floor_hour(end)) if fill_end else first_hour
    by_hour: dict[datetime, UsageTotals] = {}
    if rolled_end > first_hour:
        pending = list(
            PendingRollup.objects.filter(hour__gte=first_hour, hour__lt=rolled_end).values_list(
                "hour", flat=True
            )
        )
        sums = (
            rolled.filter(period_start__gte=first_hour, period_start__lt=rolled_end)
            .exclude(period_start__in=pending)
            .values("period_start")
            .annotate(
                requests=Sum("requests"),
                errors=Sum("errors"),
                cache_hits=Sum("cache_hits"),
                **{name: Sum(name) for name in SUMMED},
            )
            .order_by()
        )
        for row in sums:
            by_hour.setdefault(row["period_start"], UsageTotals()).add(row)
        outside = Q(created_at__gte=start, created_at__lt=first_hour) | Q(
            created_at__gte=rolled_end, created_at__lt=end
        )
        for hour in pending:
            outside |= Q(created_at__gte=hour, created_at__lt=hour + HOUR)
        raw = raw.filter(outside)
    else:
        raw = raw.filter(created_at__gte=start, created_at__lt=end)
    rows = (
        raw.annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour")
        .annotate(**_aggregates())
    )
    for row in rows.order_by():
        by_hour.setdefault(row["hour"], UsageTotals()).add(row)
    return by_hour
