"""Overage tokens to Stripe's Billing Meter, per organisation and hour slice of the period.

Each run recomputes every complete, rolled-up slice of the period (and of the previous period for
a day after it ends, for rows that arrive late across the boundary) from `usage_by_hour`, the one
definition of usage, and compares the overage each slice is due with what was already reported
for it. A difference is reported as a new MeterReport with a deterministic identifier
(organisation + slice start + sequence number within the slice): the row is written before the
call and marked after it, and Stripe drops a repeated identifier, so a retry or a second run
reports nothing twice, and a late row is billed by one more event for its slice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from analytics.rollups import floor_hour, get_fill_end, usage_by_hour
from billing import stripe_api
from billing.accounts import PAYING, find_billing_account
from billing.limits import limits_for_plan
from billing.models import MeterReport
from billing.periods import current_period, period_containing
from organizations.models import Organization

logger = logging.getLogger(__name__)

SLICE = timedelta(hours=1)
LATE_GRACE = timedelta(days=1)  # how long after its end a period still takes late rows


def overage_in_slice(included: int, used_before: int, used_in_slice: int) -> int:
    """Tokens of this slice beyond the plan's included tokens."""
    return max(0, used_before + used_in_slice - included) - max(0, used_before - included)


def find_metered_customer(org: Organization) -> tuple[str, int] | None:
    """(Stripe customer, included tokens) when the organisation's overage goes to the meter."""
    limits = limits_for_plan(org.plan)
    account = find_billing_account(org)
    if (
        limits.overage != "bill"
        or limits.monthly_tokens is None
        or account is None
        or account.status not in PAYING
        or not account.stripe_customer_id
    ):
        return None
    return account.stripe_customer_id, limits.monthly_tokens


def report_overage(org: Organization, now: datetime | None = None) -> int:
    """Report what every complete slice owes beyond what was reported; returns tokens reported."""
    now = now or timezone.now()
    metered = find_metered_customer(org)
    if metered is None:
        return 0
    customer, included = metered
    unsent = MeterReport.objects.for_org(org).filter(reported_at__isnull=True)
    for report in unsent.order_by("slice_start", "sequence"):
        _send(report, customer)  # finish what a killed run started
    fill_end = get_fill_end()
    if fill_end is None:
        return 0
    horizon = min(
        floor_hour(now - timedelta(seconds=settings.GATEWAY_ROLLUP_LAG_SECONDS)), fill_end
    )
    periods = [current_period(now)]
    previous = period_containing(periods[0][0] - SLICE)
    if now - previous[1] < LATE_GRACE:
        periods.insert(0, previous)
    reported = 0
    for start, end in periods:
        reported += _report_period(org, customer, included, start, min(end, horizon))
    return reported


def overage_due_by_slice(
    org: Organization, included: int, start: datetime, end: datetime
) -> dict[datetime, int]:
    """The overage each complete hour slice of [start, end) owes, from the one definition of
    usage; `start` is the period's start (the allowance is counted from there)."""
    tokens = {hour: totals.tokens for hour, totals in usage_by_hour(org, start, end).items()}
    due, used_before, slice_start = {}, 0, start
    while slice_start + SLICE <= end:
        in_slice = tokens.get(slice_start, 0)
        due[slice_start] = overage_in_slice(included, used_before, in_slice)
        used_before += in_slice
        slice_start += SLICE
    return due


def _report_period(
    org: Organization, customer: str, included: int, start: datetime, end: datetime
) -> int:
    if end <= start:
        return 0
    done = {
        row["slice_start"]: (row["tokens"], row["reports"])
        for row in MeterReport.objects.for_org(org)
        .filter(slice_start__gte=start, slice_start__lt=end)
        .values("slice_start")
        .annotate(tokens=Sum("tokens"), reports=Count("id"))
        .order_by()
    }
    reported = 0
    for slice_start, due in overage_due_by_slice(org, included, start, end).items():
        already, sequence = done.get(slice_start, (0, 0))
        if due > already:
            report = _claim(org, slice_start, sequence, due - already)
            if report is not None:
                _send(report, customer)
                reported += report.tokens
        elif due < already:
            logger.warning(
                "org %s: slice %s reported %s, due %s", org.pk, slice_start, already, due
            )
    return reported


def meter_identifier(org_id: int, slice_start: datetime, sequence: int) -> str:
    identifier = f"gw-{org_id}-{slice_start:%Y%m%dT%H%M%S}"
    return identifier if sequence == 0 else f"{identifier}-{sequence}"


def _claim(org: Organization, slice_start: datetime, sequence: int, tokens: int):
    try:
        with transaction.atomic():
            return MeterReport.objects.create(
                organization=org,
                slice_start=slice_start,
                sequence=sequence,
                tokens=tokens,
                identifier=meter_identifier(org.pk, slice_start, sequence),
            )
    except IntegrityError:
        return None  # another run has it


def _send(report: MeterReport, customer_id: str) -> None:
    if report.tokens > 0:
        stripe_api.send_meter_event(
            customer_id, report.tokens, report.identifier, report.slice_start
        )
    report.reported_at = timezone.now()
    report.save(update_fields=["reported_at"])
