from __future__ import annotations

import json

import pytest
import stripe

from billing.accounts import get_billing_account
from billing.models import Plan
from tests.billing.fake_stripe import FakeStripe, make_event, sign_payload

WEBHOOK_SECRET = "whsec_test_0123456789abcdef0123456789"


@pytest.fixture
def fake_stripe(settings, monkeypatch, plans):
    """Stripe configured, its API answered in memory, prices set on the paid plans."""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_" + "0" * 32
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    fake = FakeStripe()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    for plan in Plan.objects.exclude(slug="free"):
        plan.stripe_price_id = f"price_{plan.slug}"
        plan.stripe_overage_price_id = f"price_{plan.slug}_overage"
        plan.save()
    return fake


@pytest.fixture
def customer(org, fake_stripe):
    """The org's billing account linked to a Stripe customer; returns the customer id."""
    account = get_billing_account(org)
    account.stripe_customer_id = "cus_acme"
    account.save()
    fake_stripe.customers["cus_acme"] = {"id": "cus_acme", "object": "customer"}
    return "cus_acme"


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks):
    """post_event(type, obj, event_id=None, secret=WEBHOOK_SECRET) -> response.

    Runs on-commit callbacks (the e-mails) as a real commit would."""

    def post(event_type, obj, event_id=None, secret=WEBHOOK_SECRET, event=None):
        payload = json.dumps(event or make_event(event_type, obj, event_id))
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/billing/webhook",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign_payload(payload, secret),
            )

    return post
