"""The ledger adds up over any mix of ways out: requests = rows, and
Σ rows = Σ hourly roll-ups = Σ daily roll-ups = Σ meter events, with no row billing more than
the provider reported.

Each example runs requests through the real writer (the usage queue's flush), with roll-ups and
meter reports interleaved at random and late rows arriving after their hour was rolled up."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import (
    DeadLetterUsage,
    PendingRollup,
    RollupFillState,
    UsageRecord,
    UsageRollup,
)
from analytics.recording import STREAM_KEY, flush_pending_usage
from analytics.rollups import floor_hour, roll_up_usage
from analytics.usage_writer import serialise_usage
from billing import admission
from billing.accounts import get_billing_account
from billing.limits import PlanLimits
from billing.metering import report_overage
from billing.models import MeterReport, Plan, SubscriptionStatus
from billing.periods import current_period
from billing.reconciliation import reconcile_usage
from billing.sweeper import interrupted_row, sweep_interrupted_requests
from llm.redis_clients import get_sync_redis, uses_real_redis

pytestmark = pytest.mark.django_db
_ids = itertools.count()

UNLIMITED = PlanLimits(plan="metered", plan_name="Metered")
WAYS_OUT = ["served", "failed", "disconnect", "interrupted", "late", "poison"]
requests_strategy = st.lists(
    st.tuples(
        st.sampled_from(WAYS_OUT),
        st.integers(min_value=0, max_value=8 * 60 - 1),  # minute the request ends
        st.integers(min_value=0, max_value=50_000),  # input tokens reported
        st.integers(min_value=0, max_value=8_000),  # output tokens reported
        st.booleans(),  # flush, roll up and meter after this request
    ),
    min_size=1,
    max_size=30,
)


@pytest.fixture
def metered_org(org, customer, plans):
    """Every token is overage (no allowance), so the meter must carry every token."""
    Plan.objects.create(slug="metered", name="Metered", monthly_tokens=0, overage="bill")
    org.plan = "metered"
    org.save()
    account = get_billing_account(org)
    account.status = SubscriptionStatus.ACTIVE
    account.save()
    return org


def usage_row(org, way_out, at, input_tokens, output_tokens):
    """The row the edge would record for this way out, and the usage the provider reported."""
    cost = Decimal(input_tokens) * Decimal("0.00000015") + Decimal(output_tokens) * Decimal(
        "0.0000006"
    )
    row = {
        "request_id": f"p{next(_ids)}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "created_at": at,
        "status": 200,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": cost,
    }
    if way_out == "failed":
        row.update(status=502, input_tokens=0, output_tokens=0, cost=Decimal(0))
    elif way_out == "disconnect":
        row.update(client_disconnected=True, stream=True)
    elif way_out == "interrupted":
        # The row held at admission: the prompt estimate and its cost.
        row["cost"] = Decimal(input_tokens) * Decimal("0.00000015")
    elif way_out == "poison":
        row.update(requested_model="x" * 10_000, input_tokens=10**15, cost=Decimal(10**12))
    reported = (row["input_tokens"], row["output_tokens"], row["cost"])
    return row, reported


def clean_ledger(client):
    for model in (UsageRecord, UsageRollup, PendingRollup, RollupFillState, MeterReport):
        model.objects.all().delete()
    DeadLetterUsage.objects.all().delete()
    client.flushdb()


@pytest.fixture
def queue(sync_store):
    """The usage stream of the store this run uses; on a real Redis, with the real sweeper for
    the requests of dead processes."""
    return get_sync_redis()


def send(client, org, way_out, row):
    """The request leaves the edge: its row is queued, or (interrupted) held at admission and its
    process dies, so only the sweeper can write it."""
    if way_out == "interrupted" and uses_real_redis():
        async_to_sync(admission.admit)(
            org.id, None, UNLIMITED, None, row["input_tokens"], row["cost"], usage_row=row
        )
        return
    if way_out == "interrupted":  # one process, which wrote what the sweeper would have
        row = interrupted_row(row)
    client.xadd(STREAM_KEY, {"p": serialise_usage(row)})


def settle_ledger(client, org):
    sweep_interrupted_requests(now=time.time() + 3600)  # this process "died" long ago
    flush_pending_usage()
    roll_up_usage()
    report_overage(org)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(requests=requests_strategy)
def test_the_ledger_adds_up_over_any_mix_of_ways_out(requests, metered_org, fake_stripe, queue):
    clean_ledger(queue)
    fake_stripe.meter_events.clear()
    # A day into next month, so the whole run lies in one period whatever today is.
    base = current_period()[1] + timedelta(days=1)
    reported = {}
    for way_out, minute, input_tokens, output_tokens, settle_now in sorted(
        requests, key=lambda r: r[1]
    ):
        now = base + timedelta(minutes=minute)
        # A late row belongs to an hour that ended well before it was written.
        at = floor_hour(now) - timedelta(minutes=30) if way_out == "late" else now
        row, provider_reported = usage_row(metered_org, way_out, at, input_tokens, output_tokens)
        reported[row["request_id"]] = provider_reported
        with time_machine.travel(now, tick=False):
            send(queue, metered_org, way_out, row)
            if settle_now:
                settle_ledger(queue, metered_org)
    end = base + timedelta(hours=10)
    with time_machine.travel(end, tick=False):
        settle_ledger(queue, metered_org)
        ledger = reconcile_usage(base - timedelta(hours=1))

    rows = list(UsageRecord.objects.all())
    assert len(rows) == len(requests)  # requests = rows
    assert ledger.drift == []
    assert ledger.rows.tokens == sum(r.total_tokens for r in rows)
    assert ledger.rows.tokens == ledger.hourly.tokens == ledger.daily.tokens
    meter_events = sum(int(e["payload[value]"]) for e in fake_stripe.meter_events.values())
    assert meter_events == ledger.rows.tokens == ledger.meter_reported
    for row in rows:
        input_reported, output_reported, cost_reported = reported[row.request_id]
        assert row.input_tokens <= input_reported
        assert row.output_tokens <= output_reported
        assert row.cost <= cost_reported
