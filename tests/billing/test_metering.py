from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import time_machine

from analytics.rollups import roll_up_usage
from analytics.usage_writer import serialise_usage, write_usage_payloads
from billing.accounts import get_billing_account
from billing.metering import overage_in_slice, report_overage
from billing.models import MeterReport, SubscriptionStatus
from tests.clock import next_month, next_month_start

pytestmark = pytest.mark.django_db
START = next_month(1)
_ids = itertools.count()


def use(org, at, tokens):
    """One usage record through the real writer (which marks its hour for the roll-ups)."""
    record = {
        "organization_id": org.id,
        "request_id": f"m{next(_ids)}",
        "created_at": at,
        "endpoint": "chat.completions",
        "input_tokens": tokens,
        "status": 200,
    }
    write_usage_payloads([serialise_usage(record)])


def roll_up_and_report(org):
    roll_up_usage()
    return report_overage(org)


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
        assert roll_up_and_report(starter_org) == 3_000
        assert roll_up_and_report(starter_org) == 0  # a second run reports nothing
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
            roll_up_and_report(starter_org)
        fake_stripe.failing_paths.clear()
        roll_up_and_report(starter_org)
    [report] = MeterReport.objects.all()
    assert report.tokens == 100_000 and report.reported_at is not None
    assert list(fake_stripe.meter_events) == [report.identifier]


def test_free_plans_report_nothing(org, customer, fake_stripe):
    use(org, START + timedelta(minutes=5), 600_000)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        assert roll_up_and_report(org) == 0
    assert fake_stripe.requests == []


def test_a_late_row_is_billed_as_the_difference_under_a_new_identifier(starter_org, fake_stripe):
    use(starter_org, START + timedelta(minutes=5), 500_500)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        assert roll_up_and_report(starter_org) == 500
    with time_machine.travel(START + timedelta(hours=3), tick=False):
        use(starter_org, START + timedelta(minutes=50), 300)  # late: its hour was rolled up
        assert roll_up_and_report(starter_org) == 300
        assert roll_up_and_report(starter_org) == 0

    identifier = f"gw-{starter_org.pk}-{START:%Y%m%dT%H%M%S}"
    events = fake_stripe.meter_events
    assert list(events) == [identifier, f"{identifier}-1"]
    assert [e["payload[value]"] for e in events.values()] == ["500", "300"]
    assert sum(r.tokens for r in MeterReport.objects.all()) == 800


def test_late_rows_of_the_last_hour_of_a_month_are_reported_after_it_ends(starter_org, fake_stripe):
    month_end = next_month_start(START)
    use(starter_org, month_end - timedelta(minutes=10), 500_100)
    with time_machine.travel(month_end + timedelta(hours=2), tick=False):
        assert roll_up_and_report(starter_org) == 100
