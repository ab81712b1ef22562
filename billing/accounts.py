"""Each organisation's billing account (its link to Stripe)."""

from __future__ import annotations

from billing.models import BillingAccount, SubscriptionStatus
from organizations.models import Organization

PAYING = {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE}


def get_billing_account(org: Organization) -> BillingAccount:
    account, _ = BillingAccount.objects.get_or_create(organization=org)
    return account


def find_billing_account(org: Organization) -> BillingAccount | None:
    return BillingAccount.objects.filter(organization=org).first()
