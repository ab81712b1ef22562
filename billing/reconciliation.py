"""Does the ledger add up? Requests against rows, rows against roll-ups, roll-ups against Stripe.

`reconcile_usage(since)` compares, over whole hours from `since` up to the roll-up mark:
- rows (UsageRecord) = hourly roll-ups = daily roll-ups, in requests, tokens and cost;
- the overage the meter is due (`billing.metering.overage_due_by_slice`, from the same usage)
  = the overage reported to Stripe (MeterReport rows marked sent);
and lists what is still on its way to a row: entries in the usage queue, dead letters, hours
waiting to be rolled up again. `manage.py reconcile_usage --since ...` prints it, drift first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from analytics.models import DeadLetterUsage, Frequency, PendingRollup, UsageRecord, UsageRollup
from analytics.recording import count_queued_usage
from analytics.rollups import floor_day, floor_hour, get_fill_end
from billing.metering import find_metered_customer, overage_due_by_slice
from billing.models import MeterReport
from billing.periods import period_containing
from organizations.models import Organization

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Sums:
    requests: int
    tokens: int
    cost: Decimal


@dataclass
class Reconciliation:
    start: datetime
    end: datetime  # the roll-up mark: later rows are not rolled up yet
    rows: Sums
    hourly: Sums
    daily: Sums
    meter_due: int
    meter_reported: int
    queued: int  # usage entries not yet written
    dead_letters: int  # refused by the database, waiting in the dead-letter table
    pending_hours: int  # hours with rows written after their roll-up
    drift: list[str] = field(default_factory=list)


COST_PLACES = Decimal("0.00000001")  # a usage row's cost has 8 places; so has any sum of them
FLOAT_DIGITS = Decimal("1e-13")


def _sums(totals: dict) -> Sums:
    # Quantized: SQLite sums its decimal column as floats (PostgreSQL's numeric is exact).
    return Sums(
        requests=totals["requests"] or 0,
        tokens=(totals["input_tokens"] or 0) + (totals["output_tokens"] or 0),
        cost=Decimal(totals["cost"] or 0).quantize(COST_PLACES),
    )


def reconcile_usage(since: datetime, now: datetime | None = None) -> Reconciliation:
    now = now or timezone.now()
    start = floor_day(since)
    end = get_fill_end() or start
    rows = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        requests=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
    )
    rolled = {name: Sum(name) for name in ("requests", "input_tokens", "output_tokens", "cost")}
    hourly = UsageRollup.objects.filter(
        frequency=Frequency.HOUR, period_start__gte=start, period_start__lt=end
    ).aggregate(**rolled)
    daily = UsageRollup.objects.filter(
        frequency=Frequency.DAY, period_start__gte=start, period_start__lt=floor_day(end) + DAY
    ).aggregate(**rolled)
    due, reported = _meter(start, min(end, floor_hour(now)))
    result = Reconciliation(
        start=start,
        end=end,
        rows=_sums(rows),
        hourly=_sums(hourly),
        daily=_sums(daily),
        meter_due=due,
        meter_reported=reported,
        queued=count_queued_usage(),
        dead_letters=DeadLetterUsage.objects.filter(written_at__isnull=True).count(),
        pending_hours=PendingRollup.objects.filter(hour__lt=end).count(),
    )
    result.drift = _drift(result)
    return result


def _meter(start: datetime, end: datetime) -> tuple[int, int]:
    """(overage due, overage reported) of every metered organisation for slices in [start, end)."""
    due = reported = 0
    for org in Organization.objects.order_by("pk"):
        metered = find_metered_customer(org)
        if metered is None:
            continue
        period_start = period_containing(start)[0]
        while period_start < end:
            period_end = period_containing(period_start)[1]
            slices = overage_due_by_slice(org, metered[1], period_start, min(period_end, end))
            due += sum(tokens for at, tokens in slices.items() if at >= start)
            period_start = period_end
        sent = MeterReport.objects.for_org(org).filter(
            slice_start__gte=start, slice_start__lt=end, reported_at__isnull=False
        )
        reported += sent.aggregate(tokens=Sum("tokens"))["tokens"] or 0
    return due, reported


def _drift(r: Reconciliation) -> list[str]:
    found = []
    if r.dead_letters:
        found.append(f"{r.dead_letters} requests have no row: refused, in the dead-letter table")
    for name, sums in (("hourly roll-ups", r.hourly), ("daily roll-ups", r.daily)):
        if not _agree(sums, r.rows):
            found.append(f"rows {r.rows} != {name} {sums}")
    if r.meter_due != r.meter_reported:
        found.append(f"meter due {r.meter_due} tokens != reported {r.meter_reported}")
    return found


def _agree(a: Sums, b: Sums) -> bool:
    if (a.requests, a.tokens) != (b.requests, b.tokens):
        return False
    if connection.vendor != "sqlite":
        return a.cost == b.cost
    # SQLite keeps decimals as 64-bit floats: sums of sums agree to about 13 significant digits.
    return abs(a.cost - b.cost) <= max(COST_PLACES, max(abs(a.cost), abs(b.cost)) * FLOAT_DIGITS)


def format_reconciliation(r: Reconciliation) -> list[str]:
    lines = [f"DRIFT: {line}" for line in r.drift] or ["No drift."]
    lines += [
        f"From {r.start:%Y-%m-%d %H:%M} to the roll-up mark {r.end:%Y-%m-%d %H:%M} UTC:",
        f"  requests still queued       {r.queued}",
        f"  requests without a row      {r.dead_letters} (dead letters)",
        f"  hours awaiting re-roll-up   {r.pending_hours}",
        f"  {'':26}{'requests':>12}{'tokens':>16}{'cost':>22}",
    ]
    table = (("rows", r.rows), ("hourly roll-ups", r.hourly), ("daily roll-ups", r.daily))
    for name, sums in table:
        lines.append(f"  {name:26}{sums.requests:>12}{sums.tokens:>16}{sums.cost:>22}")
    lines.append(f"  {'meter due (overage)':26}{'':>12}{r.meter_due:>16}")
    lines.append(f"  {'meter reported to Stripe':26}{'':>12}{r.meter_reported:>16}")
    return lines
