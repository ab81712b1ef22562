"""Applying Stripe's subscription state to an organisation: plan, status, the past-due walk.

Always from the subscription as Stripe has it now (re-read), so events arriving twice or out of
order cannot leave an older state behind.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import notifications
from billing.models import BillingAccount, Plan, SubscriptionStatus

logger = logging.getLogger(__name__)

FREE_PLAN = "free"
STATUS_FROM_STRIPE = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.TRIALING,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
    "incomplete": SubscriptionStatus.INCOMPLETE,
    "paused": SubscriptionStatus.CANCELED,
}
ENDED = {SubscriptionStatus.CANCELED}


def find_account_for_subscription(data: dict) -> BillingAccount | None:
    """The account this subscription belongs to, locked for the rest of the transaction."""
    accounts = BillingAccount.objects.select_for_update().select_related("organization")
    org_id = (data.get("metadata") or {}).get("organization_id")
    account = accounts.filter(organization_id=int(org_id)).first() if org_id else None
    if account is None and data.get("customer"):
        account = accounts.filter(stripe_customer_id=_id_of(data["customer"])).first()
    return account


def apply_subscription(account: BillingAccount, data: dict, now: datetime | None = None) -> None:
    now = now or timezone.now()
    status = STATUS_FROM_STRIPE.get(data.get("status", ""), SubscriptionStatus.INCOMPLETE)
    is_other = bool(account.stripe_subscription_id) and account.stripe_subscription_id != data["id"]
    if is_other and (status in ENDED or status == SubscriptionStatus.INCOMPLETE):
        # An older or abandoned subscription ending does not touch the current one.
        logger.info("ignoring state of a subscription that is not the account's current one")
        return
    org = account.organization
    account.stripe_subscription_id = data["id"]
    if data.get("customer"):
        account.stripe_customer_id = _id_of(data["customer"])
    account.current_period_start, account.current_period_end = _period_of(data)
    account.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    account.status = status
    account.state_as_of = now
    plan = find_plan_for_subscription(data)
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        account.past_due_since = account.grace_ends_at = account.past_due_notified_at = None
        account.downgraded_at = None
        if plan is not None:
            _set_plan(org, plan.slug)
    elif status == SubscriptionStatus.PAST_DUE:
        _start_grace(account, now)
    elif status in ENDED:
        account.past_due_since = account.grace_ends_at = None
        _set_plan(org, FREE_PLAN)
    account.updated_at = now
    account.save()


def find_plan_for_subscription(data: dict) -> Plan | None:
    price_ids = [item["price"]["id"] for item in _items_of(data) if item.get("price")]
    return Plan.objects.filter(stripe_price_id__in=price_ids).exclude(stripe_price_id="").first()


def _start_grace(account: BillingAccount, now: datetime) -> None:
    if account.past_due_since is None:
        account.past_due_since = now
        account.grace_ends_at = now + timedelta(days=settings.GATEWAY_BILLING_GRACE_DAYS)
    if account.past_due_notified_at is None:
        account.past_due_notified_at = now
        org, grace_ends_at = account.organization, account.grace_ends_at
        transaction.on_commit(lambda: notifications.send_past_due_email(org, grace_ends_at))


def downgrade_overdue_accounts(now: datetime | None = None) -> int:
    """Past-due accounts whose grace period has ended move to the Free plan (once)."""
    now = now or timezone.now()
    overdue = BillingAccount.objects.filter(
        status=SubscriptionStatus.PAST_DUE, grace_ends_at__lte=now, downgraded_at__isnull=True
    ).values_list("pk", flat=True)
    count = 0
    for pk in list(overdue):
        with transaction.atomic():
            account = (
                BillingAccount.objects.select_for_update()
                .select_related("organization")
                .filter(pk=pk, status=SubscriptionStatus.PAST_DUE, downgraded_at__isnull=True)
                .first()
            )
            if account is None:
                continue  # paid or downgraded meanwhile
            account.downgraded_at = now
            account.save(update_fields=["downgraded_at"])
            org = account.organization
            _set_plan(org, FREE_PLAN)
            transaction.on_commit(lambda org=org: notifications.send_downgraded_email(org))
            count += 1
    return count


def _set_plan(org, slug: str) -> None:
    if org.plan != slug:
        org.plan = slug
        org.save(update_fields=["plan"])


def _id_of(value) -> str:
    return value["id"] if isinstance(value, dict) else value


def _items_of(data: dict) -> list[dict]:
    items = data.get("items") or {}
    return items.get("data", []) if isinstance(items, dict) else []


def _period_of(data: dict) -> tuple[datetime | None, datetime | None]:
    # Newer API versions keep the period on each item rather than on the subscription.
    source = data if data.get("current_period_start") else next(iter(_items_of(data)), {})
    start, end = source.get("current_period_start"), source.get("current_period_end")
    if not start or not end:
        return None, None
    return datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC)
