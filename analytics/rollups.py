"""Usage roll-ups: hourly and daily totals per organisation × model × API key × provider × error
class.

`roll_up_usage(now)` advances a high-water mark (RollupFillState) over every complete hour since
it (up to a week a run); those hours are rebuilt from the raw records (one INSERT ... SELECT ...
GROUP BY per level and day, hours then days). The first and last days are committed together
with the mark; a catch-up's days between them are rebuilt first, on several connections at
once, each in its own transaction, and count for nothing until the mark passes them. So a
killed worker loses nothing and a re-run of any window (`roll_up_window`) gives the same
totals. It then rebuilds every hour below the mark that received a late record (PendingRollup,
marked by the writer in the transaction that inserted it), and that hour's day.

`usage_totals(org, start, end)` is the one definition of an organisation's usage between two
instants: roll-ups for rebuilt hours below the mark, raw records for everything else (hours above
the mark, hours waiting for a rebuild, and the ragged ends of the range). It is exact at any time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
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
ROLLUP_LOCK = 0x726F6C6C7570  # "rollup": the advisory lock key of roll_up_usage
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
    """Roll up every complete hour not yet rolled up (up to max_hours per run); returns the mark.

    The first and last days of the window are rebuilt in the transaction that moves the mark;
    the whole days between them first, each in its own transaction, on GATEWAY_ROLLUP_WORKERS
    connections at once where the database allows. Readers take roll-ups only up to the mark's
    day, so days written ahead of it count for nothing until it passes them (a run that fails
    midway leaves them to be rebuilt). A run that finds another under way leaves the work to
    it."""
    with _one_run_at_a_time() as alone:
        if alone:
            _advance_mark(now or timezone.now(), max_hours)
    fill_end = get_fill_end()
    if alone:
        roll_up_late_records(fill_end)
    return fill_end


def _advance_mark(now: datetime, max_hours: int) -> None:
    target = floor_hour(now - timedelta(seconds=settings.GATEWAY_ROLLUP_LAG_SECONDS))
    start = get_fill_end()
    if start is None:
        first = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True)
        first_at = first.first()
        start = floor_hour(first_at) if first_at else target
    end = min(target, start + HOUR * max_hours)
    if start < end:
        # The whole days between the mark's day and the last first: no reader looks past the
        # mark's day, so a run that fails midway leaves nothing a reader sees. The ends go with
        # the mark.
        pieces = _day_pieces(start, end)
        _rebuild_apart(pieces[1:-1])
        with transaction.atomic():
            for piece in dict.fromkeys((pieces[0], pieces[-1])):  # one piece, or two
                _rebuild_marked(*piece)
            RollupFillState.objects.update_or_create(
                name=FILL_STATE, defaults={"end": end, "updated_at": timezone.now()}
            )
    if get_fill_end() is None:
        RollupFillState.objects.create(name=FILL_STATE, end=target)


@contextmanager
def _one_run_at_a_time():
    """Yields whether this run holds the roll-up lock (PostgreSQL: a session advisory lock).

    Two runs at once would each delete the rows the other cannot see yet and insert their own:
    an hour counted twice. SQLite runs one writing transaction at a time, so needs none."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ROLLUP_LOCK])
        alone = cursor.fetchone()[0]
    try:
        yield alone
    finally:
        if alone:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ROLLUP_LOCK])


def _day_pieces(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at midnights: a piece's daily roll-up is whole within it."""
    pieces, day = [], floor_day(start)
    while day < end:
        next_day = day + timedelta(days=1)
        pieces.append((max(start, day), min(end, next_day)))
        day = next_day
    return pieces


def _rebuild_apart(pieces: list[tuple[datetime, datetime]]) -> None:
    """Rebuild each piece in a transaction of its own, several at once on PostgreSQL outside a
    transaction (inside one, other connections would not see its records)."""
    workers = min(settings.GATEWAY_ROLLUP_WORKERS, len(pieces))
    if workers < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for piece in pieces:
            _rebuild_piece(*piece)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="rollup") as pool:
        for _ in pool.map(_rebuild_piece_on_own_connection, pieces):
            pass  # re-raises a piece's error


def _rebuild_piece(start: datetime, end: datetime) -> None:
    with transaction.atomic():
        _rebuild_marked(start, end)


def _rebuild_piece_on_own_connection(piece: tuple[datetime, datetime]) -> None:
    try:
        _rebuild_piece(*piece)
    finally:
        connection.close()  # this thread's own connection


def roll_up_late_records(fill_end: datetime | None = None) -> int:
    """Rebuild every hour below the mark that received records since it was rolled up."""
    fill_end = fill_end or get_fill_end()
    if fill_end is None:
        return 0
    late = PendingRollup.objects.filter(hour__lt=fill_end).order_by("hour")
    hours = list(late.values_list("hour", flat=True))
    for hour in hours:
        with transaction.atomic():
            _rebuild_marked(hour, hour + HOUR)
    return len(hours)


def _rebuild_marked(start: datetime, end: datetime) -> None:
    """Rebuild [start, end) and clear the hours' late marks, unless a record came meanwhile."""
    # Read the marks first: a record committed after this read changes its hour's token, so the
    # delete below misses and the hour is rebuilt again on the next run.
    marks = list(
        PendingRollup.objects.filter(hour__gte=start, hour__lt=end).values_list("hour", "token")
    )
    _rebuild(start, end)
    if marks:
        read = Q()
        for hour, token in marks:
            read |= Q(hour=hour, token=token)
        PendingRollup.objects.filter(read).delete()


def roll_up_window(start: datetime, end: datetime) -> None:
    """Rebuild every hour in [start, end) (and its days) from the raw records."""
    with transaction.atomic():
        _rebuild_marked(floor_hour(start), end)


def _aggregates():
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__gte=400)),
        "cache_hits": Count("id", filter=Q(cache_hit=True)),
        "latency_ms_sum": Sum("latency_ms"),
        **{name: Sum(name) for name in SUMMED},
    }


ROLLUP_TABLE = UsageRollup._meta.db_table
RECORD_TABLE = UsageRecord._meta.db_table
ROLLUP_COLUMNS = (
    "organization_id, api_key_id, model, provider, error_class, frequency, period_start, "
    "requests, errors, cache_hits, input_tokens, output_tokens, cached_input_tokens, cost, "
    "latency_ms_sum"
)
# Each level is one INSERT ... SELECT ... GROUP BY: the database sums, nothing comes to Python.
HOURS_SQL = f"""
    INSERT INTO {ROLLUP_TABLE} ({ROLLUP_COLUMNS})
    SELECT organization_id, api_key_id, requested_model, provider, error_class, 'hour', {{hour}},
           COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
           SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens),
           SUM(cached_input_tokens), SUM(cost), SUM(latency_ms)
    FROM {RECORD_TABLE}
    WHERE created_at >= %s AND created_at < %s
    GROUP BY organization_id, api_key_id, requested_model, provider, error_class, {{hour}}
    ORDER BY organization_id, 7
"""  # noqa: S608 (in the order of rollup_org_period: its inserts land side by side)
DAYS_SQL = f"""
    INSERT INTO {ROLLUP_TABLE} ({ROLLUP_COLUMNS})
    SELECT organization_id, api_key_id, model, provider, error_class, 'day', {{day}},
           SUM(requests), SUM(errors), SUM(cache_hits), SUM(input_tokens), SUM(output_tokens),
           SUM(cached_input_tokens), SUM(cost), SUM(latency_ms_sum)
    FROM {ROLLUP_TABLE}
    WHERE frequency = 'hour' AND period_start >= %s AND period_start < %s
    GROUP BY organization_id, api_key_id, model, provider, error_class, {{day}}
"""  # noqa: S608
TRUNCATE_TO = {
    # Times are UTC (USE_TZ); SQLite keeps them as "YYYY-MM-DD HH:MM:SS[.ffffff]" text.
    "postgresql": {
        "hour": "date_trunc('hour', created_at, 'UTC')",
        "day": "date_trunc('day', period_start, 'UTC')",
    },
    "sqlite": {
        "hour": "strftime('%%Y-%%m-%%d %%H:00:00', created_at)",
        "day": "strftime('%%Y-%%m-%%d 00:00:00', period_start)",
    },
}


def _rebuild(start: datetime, end: datetime) -> None:
    """Replace the hourly roll-ups of [start, end) and the daily ones of the days it touches.

    A day at a time: each statement groups one day's records, a hash table that stays in memory,
    where a month's catch-up in one statement had millions of groups and spilled to disk."""
    truncate = TRUNCATE_TO[connection.vendor]
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '256MB'")
        day = floor_day(start)
        while day < end:
            next_day = day + timedelta(days=1)
            hours = (max(start, day), min(end, next_day))
            UsageRollup.objects.filter(
                frequency=Frequency.HOUR, period_start__gte=hours[0], period_start__lt=hours[1]
            ).delete()
            cursor.execute(HOURS_SQL.format(hour=truncate["hour"]), [adapt(h) for h in hours])
            UsageRollup.objects.filter(frequency=Frequency.DAY, period_start=day).delete()
            cursor.execute(DAYS_SQL.format(day=truncate["day"]), [adapt(day), adapt(next_day)])
            day = next_day


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
