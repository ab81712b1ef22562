"""Webhook deliveries dated outside five minutes are refused; concurrent duplicates apply once."""

from __future__ import annotations

import json
import math
import threading
import time
from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from billing import webhooks
from billing.models import ProcessedEvent
from tests.billing.conftest import WEBHOOK_SECRET
from tests.billing.fake_stripe import make_event, sign_payload


def post_signed(client, event, timestamp=None):
    payload = json.dumps(event)
    return client.post(
        "/api/billing/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload, WEBHOOK_SECRET, timestamp),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [3600, 301, -301, -3600])
def test_a_delivery_dated_outside_five_minutes_is_refused(
    client, org, customer, fake_stripe, offset
):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    event = make_event("customer.subscription.created", sub)
    # Whole seconds rounded away from now: the second the request takes must not bring a
    # stamp 301 s ahead back within the 300 s (int() of now + 301 is only 300.01 s ahead at .99).
    now = time.time()
    signed_at = (math.ceil(now) if offset > 0 else math.floor(now)) + offset
    response = post_signed(client, event, timestamp=signed_at)
    assert response.status_code == 400
    assert "timestamp" in response.content.decode()
    assert not ProcessedEvent.objects.exists()
    org.refresh_from_db()
    assert org.plan == "free"


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [-240, 0, 240])
def test_a_delivery_within_five_minutes_is_applied(client, org, customer, fake_stripe, offset):
    sub = fake_stripe.add_subscription(customer, "price_starter")
    event = make_event("customer.subscription.created", sub)
    assert post_signed(client, event, timestamp=int(time.time()) + offset).status_code == 200
    org.refresh_from_db()
    assert org.plan == "starter"


@pytest.mark.django_db
def test_a_delivery_that_lost_the_race_answers_200_and_applies_nothing(
    client, org, customer, fake_stripe
):
    """The second of two simultaneous deliveries passes the 'already applied?' check before the
    first commits; it must then find the event claimed, not fail on the unique key."""
    sub = fake_stripe.add_subscription(customer, "price_starter")
    event = make_event("customer.subscription.created", sub)
    assert post_signed(client, event).status_code == 200
    unseen = mock.Mock(**{"exists.return_value": False})
    with mock.patch.object(webhooks.ProcessedEvent.objects, "filter", return_value=unseen):
        assert post_signed(client, event).status_code == 200
    assert ProcessedEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    assert len(fake_stripe.calls("GET", f"/v1/subscriptions/{sub['id']}")) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_all_answer_200(org, customer, fake_stripe, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections need PostgreSQL")
    sub = fake_stripe.add_subscription(customer, "price_starter")
    event = make_event("customer.subscription.created", sub)
    slow_sync = webhooks.sync_subscription

    def sync_slowly(subscription_id):
        time.sleep(0.3)  # hold the claim while the other deliveries arrive
        slow_sync(subscription_id)

    monkeypatch.setattr(webhooks, "sync_subscription", sync_slowly)
    statuses: list[int] = []
    start = threading.Barrier(4)

    def deliver():
        start.wait()
        try:
            statuses.append(post_signed(Client(), event).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200, 200, 200]
    assert ProcessedEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    assert len(fake_stripe.calls("GET", f"/v1/subscriptions/{sub['id']}")) == 1
    org.refresh_from_db()
    assert org.plan == "starter"
