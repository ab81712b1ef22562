"""Each organisation's billing account and its current billing period."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from billing.models import BillingAccount, SubscriptionStatus
from organizations.models import Organization

PAYING = {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE}


def get_billing_account(org: Organization) -> BillingAccount:
    account, _ = BillingAccount.objects.get_or_create(organization=org)
    return account


def find_billing_account(org: Organization) -> BillingAccount | None:
    return BillingAccount.objects.filter(organization=org).first()


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def current_period(
    org: Organization, account: BillingAccount | None = None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The subscription's current period while it is paying, else the calendar month (UTC)."""
    now = now or timezone.now()
    account = account if account is not None else find_billing_account(org)
    if (
        account is not None
        and account.status in PAYING
        and account.current_period_start
        and account.current_period_end
        and account.current_period_start <= now < account.current_period_end
    ):
        return account.current_period_start, account.current_period_end
    return month_bounds(now)
