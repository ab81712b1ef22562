"""Overage tokens to Stripe's Billing Meter, per organisation and hour slice of the period.

Each slice's report has a deterministic identifier (organisation + slice start): the row is written
before the call and marked after it, and Stripe drops a repeated identifier, so a retry or a second
run reports nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.rollups import usage_totals
from billing import stripe_api
from billing.accounts import PAYING, current_period, find_billing_account
from billing.limits import limits_for_plan
from billing.models import MeterReport
from organizations.models import Organization

SLICE = timedelta(hours=1)


def overage_in_slice(included: int, used_before: int, used_in_slice: int) -> int:
    """Tokens of this slice beyond the plan's included tokens."""
    return max(0, used_before + used_in_slice - included) - max(0, used_before - included)


def report_overage(org: Organization, now: datetime | None = None) -> int:
    """Report every complete, unreported slice of the current period; returns tokens reported."""
    now = now or timezone.now()
    limits = limits_for_plan(org.plan)
    account = find_billing_account(org)
    if (
        limits.overage != "bill"
        or limits.monthly_tokens is None
        or account is None
        or account.status not in PAYING
        or not account.stripe_customer_id
    ):
        return 0
    start, end = current_period(org, account, now)
    last = MeterReport.objects.for_org(org).filter(slice_start__gte=start).order_by("-slice_start")
    last = last.first()
    if last is not None and last.reported_at is None:
        _send(last, account.stripe_customer_id)  # finish what a killed run started
    slice_start = last.slice_start + SLICE if last else start
    horizon = min(end, now - timedelta(seconds=settings.GATEWAY_ROLLUP_LAG_SECONDS))
    used_before = usage_totals(org, start, slice_start).tokens
    reported = 0
    while slice_start + SLICE <= horizon:
        in_slice = usage_totals(org, slice_start, slice_start + SLICE).tokens
        tokens = overage_in_slice(limits.monthly_tokens, used_before, in_slice)
        report = _claim(org, slice_start, tokens)
        if report is not None:
            _send(report, account.stripe_customer_id)
            reported += tokens
        used_before += in_slice
        slice_start += SLICE
    return reported


def _claim(org: Organization, slice_start: datetime, tokens: int) -> MeterReport | None:
    identifier = f"gw-{org.pk}-{slice_start:%Y%m%dT%H%M%S}"
    try:
        with transaction.atomic():
            return MeterReport.objects.create(
                organization=org, slice_start=slice_start, tokens=tokens, identifier=identifier
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
