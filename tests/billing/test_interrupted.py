"""A request whose gateway process dies still ends in exactly one usage row (the sweeper)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from asgiref.sync import async_to_sync
from django.utils import timezone

from analytics.models import UsageRecord
from analytics.recording import STREAM_KEY
from analytics.usage_writer import serialise_usage, write_usage_payloads
from billing import admission, inflight, sweeper
from billing.limits import PlanLimits
from billing.tasks import sweep_interrupted_requests
from tests.stores import TEST_REDIS_URL, use_redis

pytestmark = pytest.mark.django_db(transaction=True)
LIMITS = PlanLimits(plan="test", plan_name="Test", monthly_budget_usd=Decimal("10"))


def held_row(org, request_id="req-held"):
    return {
        "request_id": request_id,
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "created_at": timezone.now(),
        "status": 200,
        "input_tokens": 120,  # the prompt as estimated at admission
        "cost": Decimal("0.00002"),  # the prompt's cost
        "stream": True,
    }


async def admit_and_hold(org, row):
    decision = await admission.admit(org.id, None, LIMITS, None, 600, Decimal("0.5"), usage_row=row)
    return decision.reservation


def month_fields(client, reservation):
    return client.hgetall(f"gw:{{o:{reservation.org_id}}}:m:{reservation.month}")


def test_a_dead_processs_request_becomes_one_interrupted_row(settings, org):
    client = use_redis(settings)
    reservation = async_to_sync(admit_and_hold)(org, held_row(org))
    assert month_fields(client, reservation)["r:usd"] == "500000000"  # $0.5 held

    later = time.time() + settings.GATEWAY_PROCESS_DEAD_SECONDS + 1  # no beat since
    assert sweeper.sweep_interrupted_requests(now=later) == 1
    assert sweeper.sweep_interrupted_requests(now=later) == 0

    row = UsageRecord.objects.get()
    assert (row.request_id, row.input_tokens, row.output_tokens) == ("req-held", 120, 0)
    assert row.error_class == "interrupted" and row.tokens_estimated
    assert row.cost == Decimal("0.00002")
    month = month_fields(client, reservation)
    assert month["r:usd"] == "0"  # the hold is given back at once, not at its expiry
    assert month["usd"] == "20000"  # and what the row bills is counted
    assert not client.exists(f"gw:inflight:{inflight.PROCESS_ID}")


def test_a_caller_gone_before_its_admission_replied_holds_nothing(settings, org):
    """A client that hangs up while its admission is on its way: the script still runs in Redis,
    and what it reserved and held is given back at once, not left to expire and be swept."""
    client = use_redis(settings)

    async def hang_up_while_admitting():
        await admission.release(await admit_and_hold(org, held_row(org, "req-first")))
        admitting = asyncio.ensure_future(admit_and_hold(org, held_row(org, "req-gone")))
        await asyncio.sleep(0)  # the script is queued, to leave in the next turn
        assert not admitting.done()
        admitting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await admitting
        # A later admission leaves after it on the same lane: once it is back, the first has run.
        later = await admit_and_hold(org, held_row(org, "req-later"))
        await inflight.drain()
        return later

    later = async_to_sync(hang_up_while_admitting)()
    held = client.hgetall(inflight.held_key(inflight.PROCESS_ID))
    assert [json.loads(raw)["row"]["request_id"] for raw in held.values()] == ["req-later"]
    assert list(client.hgetall(f"gw:{{o:{org.id}}}:res")) == [later.id]
    assert month_fields(client, later)["r:usd"] == "500000000"  # the later request's hold only
    async_to_sync(admission.release)(later)
    assert month_fields(client, later)["r:usd"] == "0"


def test_a_held_row_whose_request_has_its_row_is_given_back_and_not_billed_again(settings, org):
    """The process recorded the request but could not settle its hold (Redis failed), then died:
    the sweeper gives the hold back and writes and bills nothing more."""
    client = use_redis(settings)
    row = held_row(org, "req-recorded")
    reservation = async_to_sync(admit_and_hold)(org, row)
    write_usage_payloads([serialise_usage({**row, "output_tokens": 50, "outcome": "served"})])
    before = month_fields(client, reservation)

    assert sweeper.sweep_interrupted_requests(now=time.time() + 3600) == 0

    assert list(UsageRecord.objects.values_list("outcome", "output_tokens")) == [("served", 50)]
    month = month_fields(client, reservation)
    assert month["r:usd"] == "0"  # the hold is given back
    assert (month.get("req"), month.get("usd")) == (before.get("req"), before.get("usd"))
    assert not client.exists(f"gw:inflight:{inflight.PROCESS_ID}")


def test_a_held_row_is_made_to_fit_its_columns_when_the_sweeper_writes_it(settings, org):
    """A row is held as it was made, and bounded only if it is ever written."""
    use_redis(settings)
    row = held_row(org, "req-long") | {"requested_model": "m" * 300, "input_tokens": 2**70}
    async_to_sync(admit_and_hold)(org, row)

    assert sweeper.sweep_interrupted_requests(now=time.time() + 3600) == 1

    written = UsageRecord.objects.get()
    assert written.requested_model == "m" * 100
    assert written.input_tokens == 2**31 - 1  # its column's range (an integer)


def test_a_late_real_row_after_the_sweep_is_not_a_second_row(settings, org):
    use_redis(settings)
    row = held_row(org)
    async_to_sync(admit_and_hold)(org, row)
    sweeper.sweep_interrupted_requests(now=time.time() + 3600)

    write_usage_payloads([serialise_usage({**row, "output_tokens": 50})])

    assert UsageRecord.objects.count() == 1


def test_a_live_processs_requests_are_left_alone_and_settling_drops_the_row(settings, org):
    client = use_redis(settings)
    reservation = async_to_sync(admit_and_hold)(org, held_row(org))

    assert sweep_interrupted_requests.apply().get() == 0
    assert client.hlen(f"gw:inflight:{inflight.PROCESS_ID}") == 1
    async_to_sync(admission.settle)(reservation, 130, Decimal("0.0001"))  # drops the held row

    assert client.hlen(f"gw:inflight:{inflight.PROCESS_ID}") == 0
    assert sweeper.sweep_interrupted_requests(now=time.time() + 3600) == 0
    assert not UsageRecord.objects.exists()


KILLED_SCRIPT = """
import asyncio, sys, time
from decimal import Decimal
import django
django.setup()
from billing import admission
from billing.limits import PlanLimits

async def main():
    limits = PlanLimits(plan="test", plan_name="Test")
    await admission.admit(ORG, None, limits, None, 600, Decimal("0.5"), usage_row={
        "request_id": "req-killed", "organization_id": ORG, "endpoint": "chat.completions",
        "status": 200, "input_tokens": 77, "cost": "0.00001"})
    print("streaming", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_process_killed_mid_request_leaves_a_row_after_the_sweep(settings, org):
    use_redis(settings)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "REDIS_URL": TEST_REDIS_URL,
        "PYTHONPATH": str(root),
    }
    script = KILLED_SCRIPT.replace("ORG", str(org.id))
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "streaming"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    assert sweeper.sweep_interrupted_requests(now=time.time() + 3600) == 1
    row = UsageRecord.objects.get(request_id="req-killed")
    assert (row.input_tokens, row.output_tokens, row.error_class) == (77, 0, "interrupted")


def test_a_refused_request_leaves_no_held_row(settings, org):
    client = use_redis(settings)
    one_a_minute = PlanLimits(plan="test", plan_name="Test", requests_per_minute=1)

    async def admit_twice():
        results = []
        for request_id in ("req-first", "req-refused"):
            row = held_row(org, request_id)
            results.append(
                await admission.admit(
                    org.id, None, one_a_minute, None, 10, Decimal(0), usage_row=row
                )
            )
        return results

    first, refused = async_to_sync(admit_twice)()
    assert first.admitted and not refused.admitted
    held = client.hgetall(f"gw:inflight:{inflight.PROCESS_ID}")
    assert list(held) == [first.reservation.id]
    assert json.loads(held[first.reservation.id])["row"]["request_id"] == "req-first"


def test_settling_drops_the_held_row_and_queues_the_record_in_one_command(settings, org):
    client = use_redis(settings)
    client.delete(STREAM_KEY)
    reservation = async_to_sync(admit_and_hold)(org, held_row(org, "req-settled"))
    assert reservation.id in client.hgetall(f"gw:inflight:{inflight.PROCESS_ID}")
    payload = serialise_usage({**held_row(org, "req-settled"), "output_tokens": 5})

    queued = async_to_sync(admission.settle)(
        reservation, 125, Decimal("0.00003"), usage_payload=payload
    )

    assert queued is True
    assert reservation.id not in client.hgetall(f"gw:inflight:{inflight.PROCESS_ID}")
    [(_, fields)] = client.xrange(STREAM_KEY)
    assert fields == {"p": payload}
    assert month_fields(client, reservation)["usd"] == "30000"  # the actual cost, in nano-dollars
    assert month_fields(client, reservation)["r:usd"] == "0"  # the hold is given back


def test_a_settlement_redis_refuses_queues_nothing_and_says_so(settings, org, monkeypatch):
    use_redis(settings)
    reservation = async_to_sync(admit_and_hold)(org, held_row(org, "req-lost"))

    async def unavailable(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")

    monkeypatch.setattr(admission, "_run", unavailable)
    payload = serialise_usage(held_row(org, "req-lost"))
    queued = async_to_sync(admission.settle)(reservation, 1, Decimal(0), usage_payload=payload)
    assert queued is False  # the caller queues the record another way
