from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from analytics.models import Alert, AlertKind
from billing.accounts import get_billing_account
from billing.models import ProcessedEvent, SubscriptionStatus
from billing.subscriptions import downgrade_overdue_accounts
from billing.webhooks import retry_failed_webhooks
from tests.billing.fake_stripe import make_event

pytestmark = pytest.mark.django_db


def reload(org):
    org.refresh_from_db()
    return get_billing_account(org)


def test_checkout_completed_puts_the_organisation_on_the_plan(
    org, owner, customer, fake_stripe, post_event
):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    session = {"id": "cs_1", "customer": customer, "subscription": sub["id"]}
    session["client_reference_id"] = str(org.pk)
    response = post_event("checkout.session.completed", session)
    assert response.status_code == 200
    account = reload(org)
    assert org.plan == "starter"
    assert account.status == SubscriptionStatus.ACTIVE
    assert account.stripe_subscription_id == sub["id"]
    assert account.current_period_end > timezone.now()


@pytest.mark.parametrize(
    "event_type",
    ["customer.subscription.created", "customer.subscription.updated"],
)
def test_subscription_events_apply_the_subscriptions_price(
    event_type, org, customer, fake_stripe, post_event
):
    sub = fake_stripe.add_subscription(customer, "price_professional")
    assert post_event(event_type, sub).status_code == 200
    assert reload(org).stripe_subscription_id == sub["id"]
    assert org.plan == "professional"


def test_subscription_deleted_moves_to_free(org, customer, fake_stripe, post_event):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    post_event("customer.subscription.created", sub)
    sub["status"] = "canceled"
    post_event("customer.subscription.deleted", sub)
    account = reload(org)
    assert org.plan == "free"
    assert account.status == SubscriptionStatus.CANCELED


def test_a_bad_signature_is_refused_and_changes_nothing(org, customer, fake_stripe, post_event):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    response = post_event("customer.subscription.created", sub, secret="whsec_wrong")
    assert response.status_code == 400
    assert reload(org).status == SubscriptionStatus.NONE
    assert org.plan == "free"
    assert not ProcessedEvent.objects.exists()
    assert fake_stripe.calls("GET", f"/v1/subscriptions/{sub['id']}") == []
    assert WebhookEventTrigger.objects.get().valid is False


def test_an_unsigned_request_is_refused(client, fake_stripe):
    response = client.post("/api/billing/webhook", data="{}", content_type="application/json")
    assert response.status_code == 400


def test_webhooks_without_stripe_configured_answer_503(client, settings, plans):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = client.post(
        "/api/billing/webhook",
        data="{}",
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="x",
    )
    assert response.status_code == 503


def test_a_duplicate_delivery_is_applied_once(org, owner, customer, fake_stripe, post_event):
    sub = fake_stripe.add_subscription(customer, "price_starter", status="past_due")
    event = make_event("invoice.payment_failed", {"id": "in_1", "subscription": sub["id"]})
    assert post_event(None, None, event=event).status_code == 200
    assert post_event(None, None, event=event).status_code == 200
    assert ProcessedEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    assert len(fake_stripe.calls("GET", f"/v1/subscriptions/{sub['id']}")) == 1
    assert len(mail.outbox) == 1


def test_an_older_event_arriving_late_does_not_undo_a_cancellation(
    org, customer, fake_stripe, post_event
):
    sub = fake_stripe.add_subscription(customer, "price_starter", status="canceled")
    post_event("customer.subscription.deleted", sub, event_id="evt_2")
    stale = dict(sub, status="active")
    post_event("customer.subscription.created", stale, event_id="evt_1")
    account = reload(org)
    assert org.plan == "free"
    assert account.status == SubscriptionStatus.CANCELED


def test_an_old_subscription_ending_does_not_touch_the_new_one(
    org, customer, fake_stripe, post_event
):
    old = fake_stripe.add_subscription(customer, "price_starter", status="canceled")
    new = fake_stripe.add_subscription(customer, "price_enterprise")
    post_event("customer.subscription.created", new)
    post_event("customer.subscription.deleted", old)
    assert reload(org).stripe_subscription_id == new["id"]
    assert org.plan == "enterprise"


def test_a_failed_payment_walks_past_due_then_downgrades_then_recovers(
    org, owner, customer, fake_stripe, post_event, django_capture_on_commit_callbacks
):
    sub = fake_stripe.add_subscription(customer, "price_professional")
    post_event("customer.subscription.created", sub)

    sub["status"] = "past_due"
    post_event("invoice.payment_failed", {"id": "in_1", "subscription": sub["id"]})
    account = reload(org)
    assert account.status == SubscriptionStatus.PAST_DUE
    assert org.plan == "professional"  # the grace period keeps the plan
    assert account.grace_ends_at == account.past_due_since + timedelta(days=7)
    [warning] = mail.outbox
    assert warning.to == ["owner@acme.test"] and "Payment failed" in warning.subject

    assert downgrade_overdue_accounts() == 0  # still in grace
    with (
        time_machine.travel(account.grace_ends_at + timedelta(minutes=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert downgrade_overdue_accounts() == 1
        assert downgrade_overdue_accounts() == 0  # once
    account = reload(org)
    assert org.plan == "free"
    assert "Free plan" in mail.outbox[-1].subject and len(mail.outbox) == 2

    sub["status"] = "active"
    post_event(
        "invoice.paid",
        {"id": "in_1", "parent": {"subscription_details": {"subscription": sub["id"]}}},
    )
    account = reload(org)
    assert org.plan == "professional"
    assert account.status == SubscriptionStatus.ACTIVE
    assert account.past_due_since is None and account.downgraded_at is None


def test_a_webhook_that_fails_is_kept_and_retried(org, customer, fake_stripe, post_event):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    fake_stripe.failing_paths.add(f"/v1/subscriptions/{sub['id']}")
    response = post_event("customer.subscription.created", sub)
    assert response.status_code == 500  # Stripe will redeliver
    trigger = WebhookEventTrigger.objects.get()
    assert trigger.valid and not trigger.processed and trigger.exception
    assert reload(org).status == SubscriptionStatus.NONE and not ProcessedEvent.objects.exists()

    assert retry_failed_webhooks() == 0  # Stripe still down: kept for later
    fake_stripe.failing_paths.clear()
    assert retry_failed_webhooks() == 1
    trigger.refresh_from_db()
    assert trigger.processed and trigger.exception == ""
    assert reload(org).status == SubscriptionStatus.ACTIVE and org.plan == "starter"


def test_a_failed_payment_opens_the_organisations_alert_and_a_paid_invoice_resolves_it(
    org, owner, customer, fake_stripe, post_event
):
    invoice = {"id": "in_9", "customer": customer, "amount_due": 9900, "currency": "usd"}

    post_event("invoice.payment_failed", invoice)

    alert = Alert.objects.get(kind=AlertKind.PAYMENT_FAILED)
    assert alert.organization == org and alert.is_open
    assert "99.00 USD" in alert.detail and "in_9" in alert.detail

    post_event("invoice.paid", invoice)

    alert.refresh_from_db()
    assert not alert.is_open


def test_an_invoice_of_an_unknown_customer_raises_no_alert(org, customer, fake_stripe, post_event):
    post_event("invoice.payment_failed", {"id": "in_9", "customer": "cus_other", "amount_due": 1})

    assert not Alert.objects.exists()
