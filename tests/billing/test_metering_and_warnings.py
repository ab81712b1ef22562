from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from analytics.models import UsageRecord
from billing.accounts import get_billing_account
from billing.metering import overage_in_slice, report_overage
from billing.models import MeterReport, SubscriptionStatus
from billing.quota_warnings import send_quota_warnings
from tests.clock import next_month

pytestmark = pytest.mark.django_db
START = next_month(1)
_ids = itertools.count()


def use(org, at, tokens):
    UsageRecord.objects.create(
        organization=org,
        request_id=f"m{next(_ids)}",
        created_at=at,
        endpoint="chat.completions",
        input_tokens=tokens,
        status=200,
    )


@pytest.fixture
def starter_org(org, customer):
    org.plan = "starter"  # 500,000 tokens included, overage billed
    org.save()
    account = get_billing_account(org)
    account.status = SubscriptionStatus.ACTIVE
    account.current_period_start, account.current_period_end = START, START + timedelta(days=30)
    account.save()
    return org


def test_overage_counts_only_tokens_beyond_the_allowance():
    assert overage_in_slice(100, 50, 40) == 0
    assert overage_in_slice(100, 90, 40) == 30
    assert overage_in_slice(100, 150, 40) == 40


def test_overage_is_reported_once_per_slice(starter_org, fake_stripe):
    use(starter_org, START + timedelta(minutes=5), 499_000)
    use(starter_org, START + timedelta(hours=1, minutes=5), 3_000)
    use(starter_org, START + timedelta(hours=2, minutes=5), 1_000)
    with time_machine.travel(START + timedelta(hours=3, minutes=30), tick=False):
        assert report_overage(starter_org) == 3_000
        assert report_overage(starter_org) == 0  # a second run reports nothing
    events = list(fake_stripe.meter_events.values())
    assert [(e["payload[value]"], e["event_name"]) for e in events] == [
        ("2000", "gateway_tokens"),
        ("1000", "gateway_tokens"),
    ]
    assert all(e["payload[stripe_customer_id]"] == "cus_acme" for e in events)
    assert len(fake_stripe.calls("POST", "/v1/billing/meter_events")) == 2
    assert MeterReport.objects.filter(reported_at__isnull=True).count() == 0


def test_a_report_interrupted_before_marking_is_resent_with_the_same_identifier(
    starter_org, fake_stripe
):
    use(starter_org, START + timedelta(minutes=5), 600_000)
    with time_machine.travel(START + timedelta(hours=1, minutes=30), tick=False):
        fake_stripe.failing_paths.add("/v1/billing/meter_events")
        with pytest.raises(Exception, match="Stripe"):
            report_overage(starter_org)
        fake_stripe.failing_paths.clear()
        report_overage(starter_org)
    [report] = MeterReport.objects.all()
    assert report.tokens == 100_000 and report.reported_at is not None
    assert list(fake_stripe.meter_events) == [report.identifier]


def test_free_plans_report_nothing(org, customer, fake_stripe):
    use(org, START + timedelta(minutes=5), 600_000)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        assert report_overage(org) == 0
    assert fake_stripe.requests == []


@time_machine.travel(START + timedelta(days=10), tick=False)
def test_owners_are_warned_at_80_and_100_percent_once_per_period(org, owner, member, plans):
    use(org, START + timedelta(days=1), 39_000)
    assert send_quota_warnings(org) == []
    use(org, START + timedelta(days=2), 1_000)  # 40,000 of 50,000 tokens
    assert send_quota_warnings(org) == [("tokens", 80)]
    assert send_quota_warnings(org) == []
    use(org, START + timedelta(days=3), 10_000)
    assert send_quota_warnings(org) == [("tokens", 100)]
    assert send_quota_warnings(org) == []
    assert [m.to for m in mail.outbox] == [["owner@acme.test"], ["owner@acme.test"]]
    assert "reached your monthly tokens" in mail.outbox[1].subject
