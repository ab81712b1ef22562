from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.db import OperationalError, connections
from prometheus_client import REGISTRY

from analytics import recording, usage_writer
from analytics.models import DeadLetterUsage, UsageRecord
from analytics.recording import (
    GROUP,
    STREAM_KEY,
    aflush_pending_usage,
    enqueue_usage,
    flush_pending_usage,
    load_month_usage,
    start_usage_flusher,
    stop_usage_flusher,
)
from analytics.tasks import flush_usage_records
from analytics.usage_writer import serialise_usage, write_usage_payloads
from billing.admission import admit
from billing.limits import PlanLimits
from llm.redis_clients import close_redis, get_embedded_sync_redis, get_sync_redis
from tests.stores import DEAD_REDIS_URL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_background_flusher(settings):
    settings.GATEWAY_USAGE_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def close_worker_thread_connections():
    # Async tests reach the database through sync_to_async's worker thread; its connection must
    # be closed before the test database is dropped.
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def usage(org, n=1, **fields):
    return {
        "request_id": f"req-{n}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.00012345"),
        "created_at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        **fields,
    }


async def test_enqueued_records_become_rows_when_flushed(store, org, api_key):
    for n in range(3):
        await enqueue_usage(serialise_usage(usage(org, n, api_key_id=api_key[0].id)))

    assert await UsageRecord.objects.acount() == 0
    assert await aflush_pending_usage() == 3
    row = await UsageRecord.objects.aget(request_id="req-1")
    assert row.cost == Decimal("0.00012345")
    assert (row.organization_id, row.api_key_id, row.total_tokens) == (org.id, api_key[0].id, 15)
    assert row.created_at == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert await UsageRecord.objects.acount() == 3


async def test_enqueue_does_not_touch_the_database(store, org, monkeypatch):
    writes = []
    monkeypatch.setattr(recording, "write_usage_payloads", writes.append)
    monkeypatch.setattr(recording, "sync_to_async", writes.append)

    await enqueue_usage(serialise_usage(usage(org)))

    assert writes == []
    monkeypatch.undo()
    assert await aflush_pending_usage() == 1


async def test_the_same_record_twice_is_one_row(store, org):
    await enqueue_usage(serialise_usage(usage(org)))
    await enqueue_usage(serialise_usage(usage(org)))
    await aflush_pending_usage()

    assert await UsageRecord.objects.acount() == 1


def test_a_replayed_batch_does_not_duplicate_rows(org):
    batch = [serialise_usage(usage(org, n)) for n in range(4)]

    write_usage_payloads(batch)
    write_usage_payloads(batch[1:])

    assert UsageRecord.objects.count() == 4


def queue_with(org, count):
    client = get_sync_redis()
    for n in range(count):
        client.xadd(STREAM_KEY, {"p": serialise_usage(usage(org, n))})
    return client


def read_as_another_flusher(client, size):
    """A flusher that reads a batch and then dies: the entries stay pending, unacknowledged."""
    recording._ensure_group(client)
    return client.xreadgroup(GROUP, "dead-flusher", {STREAM_KEY: ">"}, count=size)[0][1]


def test_a_flusher_that_died_before_writing_its_batch_loses_nothing(sync_store, settings, org):
    settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS = 0
    client = queue_with(org, 5)
    read_as_another_flusher(client, 3)

    assert flush_pending_usage() == 5
    assert UsageRecord.objects.count() == 5
    assert client.xlen(STREAM_KEY) == 0
    assert client.xpending(STREAM_KEY, GROUP)["pending"] == 0


def test_a_flusher_that_died_after_writing_its_batch_duplicates_nothing(sync_store, settings, org):
    settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS = 0
    client = queue_with(org, 5)
    write_usage_payloads([f["p"] for _, f in read_as_another_flusher(client, 3)])  # no ack

    flush_pending_usage()

    assert UsageRecord.objects.count() == 5
    assert client.xpending(STREAM_KEY, GROUP)["pending"] == 0


def test_entries_of_a_live_flusher_are_left_to_it(sync_store, settings, org):
    settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS = 60
    client = queue_with(org, 4)
    read_as_another_flusher(client, 3)

    assert flush_pending_usage() == 1
    assert client.xpending(STREAM_KEY, GROUP)["pending"] == 3


def test_entries_stay_queued_while_the_database_is_down(sync_store, settings, org, monkeypatch):
    client = queue_with(org, 3)

    def database_down(rows):
        raise OperationalError("connection refused")

    monkeypatch.setattr(usage_writer, "_insert", database_down)
    with pytest.raises(OperationalError):
        flush_pending_usage()
    monkeypatch.undo()
    settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS = 0

    assert flush_pending_usage() == 3
    assert UsageRecord.objects.count() == 3
    assert client.xlen(STREAM_KEY) == 0


def test_large_queues_drain_in_batches(sync_store, settings, org):
    settings.GATEWAY_USAGE_FLUSH_BATCH = 3
    client = queue_with(org, 10)

    assert flush_usage_records.apply().get() == 10
    assert UsageRecord.objects.count() == 10
    assert client.xlen(STREAM_KEY) == 0


def test_the_flush_task_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["flush-usage-records"]

    assert entry["task"] == "analytics.tasks.flush_usage_records"
    assert entry["schedule"] <= 10


def unavailable_count(outcome):
    labels = {"feature": "usage", "outcome": outcome}
    return REGISTRY.get_sample_value("gateway_redis_unavailable_total", labels) or 0


async def test_redis_down_at_enqueue_writes_the_row_directly(settings, org):
    settings.REDIS_URL = DEAD_REDIS_URL
    before = unavailable_count("direct_write")

    await enqueue_usage(serialise_usage(usage(org)))
    await close_redis()

    assert await UsageRecord.objects.filter(request_id="req-1").aexists()
    assert unavailable_count("direct_write") == before + 1


async def test_a_record_neither_redis_nor_the_database_took_waits_in_this_process(
    settings, org, monkeypatch
):
    settings.REDIS_URL = DEAD_REDIS_URL

    def database_down(rows):
        raise OperationalError("connection refused")

    monkeypatch.setattr(usage_writer, "_insert", database_down)
    await enqueue_usage(serialise_usage(usage(org)))
    monkeypatch.undo()
    assert get_embedded_sync_redis().xlen(STREAM_KEY) == 1

    assert await aflush_pending_usage() == 1  # the next flush of this process writes it
    await close_redis()
    assert await UsageRecord.objects.filter(request_id="req-1").aexists()


def test_a_row_whose_key_was_deleted_is_kept_without_the_key(org):
    write_usage_payloads([serialise_usage(usage(org, api_key_id=987654))])

    assert UsageRecord.objects.get(request_id="req-1").api_key_id is None


def test_unreadable_queue_entries_do_not_block_the_others(org):
    handled = write_usage_payloads(["{not json", serialise_usage(usage(org))])

    assert handled == 2
    assert UsageRecord.objects.count() == 1
    assert DeadLetterUsage.objects.get().payload == "{not json"


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"colour": "red"}, "Not UsageRecord fields: colour"), ({"request_id": ""}, "request_id")],
)
def test_records_with_wrong_fields_are_refused(org, fields, message):
    with pytest.raises(ValueError, match=message):
        serialise_usage(usage(org, **fields))


async def test_the_background_flusher_writes_within_its_interval(store, settings, org):
    settings.GATEWAY_USAGE_FLUSH_SECONDS = 0.05
    start_usage_flusher()
    await enqueue_usage(serialise_usage(usage(org)))

    for _ in range(100):
        if await UsageRecord.objects.aexists():
            break
        await asyncio.sleep(0.02)
    await stop_usage_flusher()

    assert await UsageRecord.objects.acount() == 1


async def test_this_months_usage_comes_from_the_rows(org, api_key):
    rows = [
        usage(org, 1, api_key_id=api_key[0].id, cost=Decimal("0.5")),
        usage(org, 2, cost=Decimal("0.25")),
        usage(org, 3, status=502, input_tokens=0, output_tokens=0, cost=Decimal(0)),
        usage(org, 4, created_at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC)),
    ]
    await sync_to_async(write_usage_payloads)([serialise_usage(r) for r in rows])

    used = await load_month_usage(org.id, api_key[0].id, datetime(2026, 11, 1, tzinfo=UTC))

    assert used == (2, 30, Decimal("0.75"), Decimal("0.5"))


SHUTDOWN_SCRIPT = """
import asyncio, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from analytics.recording import enqueue_usage
from analytics.usage_writer import serialise_usage
from organizations.models import Organization

org = Organization.objects.create(name="Acme", slug="acme")
asyncio.run(enqueue_usage(serialise_usage({"request_id": "last", "organization_id": org.id,
                           "endpoint": "chat.completions", "status": 200, "cost": "0.01"})))
sys.exit(0)  # a graceful stop: no explicit flush
"""


def test_records_queued_in_the_embedded_store_are_written_when_the_process_stops(tmp_path):
    database = tmp_path / "shutdown.sqlite3"
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "GATEWAY_USAGE_FLUSH_SECONDS": "0",
        "PYTHONPATH": str(root),
    }

    subprocess.run([sys.executable, "-c", SHUTDOWN_SCRIPT], env=env, cwd=root, check=True)

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT request_id, cost FROM analytics_usagerecord").fetchall()
    assert [(r[0], Decimal(str(r[1]))) for r in rows] == [("last", Decimal("0.01"))]


async def test_admission_starts_a_month_from_the_recorded_rows(store, org):
    rows = [usage(org, n, created_at=datetime.now(UTC)) for n in range(2)]
    await sync_to_async(write_usage_payloads)([serialise_usage(r) for r in rows])
    limits = PlanLimits(plan="free", plan_name="Free", monthly_requests=3)

    first = await admit(org.id, None, limits, load_usage=load_month_usage)
    second = await admit(org.id, None, limits, load_usage=load_month_usage)

    assert first.admitted
    assert second.limit_name == "monthly requests of the Free plan"


def flush_gauges():
    return (
        REGISTRY.get_sample_value("gateway_usage_flush_last_success_timestamp_seconds"),
        REGISTRY.get_sample_value("gateway_usage_flush_lag_seconds"),
    )


async def test_a_flush_sets_the_flush_metrics_even_with_nothing_queued(store):
    before = time.time()

    assert await aflush_pending_usage() == 0

    last_success, lag = flush_gauges()
    assert last_success >= before
    assert lag == 0


def test_entries_left_waiting_show_as_flush_lag(sync_store, settings, org):
    settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS = 60
    client = queue_with(org, 2)
    read_as_another_flusher(client, 1)  # held by a flusher that has not died long enough
    time.sleep(0.05)

    flush_pending_usage()

    assert flush_gauges()[1] >= 0.05


def test_a_flush_that_cannot_reach_redis_does_not_count_as_success(settings):
    settings.REDIS_URL = DEAD_REDIS_URL
    recording.metrics.record_usage_flush(lag_s=0, at=1.0)

    flush_pending_usage()

    assert flush_gauges()[0] == 1.0
