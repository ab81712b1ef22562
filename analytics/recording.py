"""Usage recording off the hot path: enqueue now, write to the database in batches soon after.

`await enqueue_usage(serialise_usage(record))` costs one XADD (no database round trip), or
none of its own when settlement queues it in its round trip. Flushers drain the queue into
UsageRecord rows: the Celery beat task `flush_usage_records` and, without REDIS_URL, a
background task each gateway process starts at start-up (every GATEWAY_USAGE_FLUSH_SECONDS) plus
a last flush at exit.

The queue is a Redis stream (llm/redis_clients.py: without REDIS_URL, the same stream in this
process's embedded store) read through a consumer group:
- an entry is acknowledged (and deleted) only after its row is committed; an entry a flusher read
  but never acknowledged (it died, or the database was down) is claimed by the next flusher once
  it has been idle GATEWAY_USAGE_CLAIM_IDLE_SECONDS (XAUTOCLAIM);
- rows are inserted with ignore_conflicts on the unique request_id, so a replay is harmless;
- concurrent flushers share the work (each entry goes to one of them): no lock.
If Redis fails at enqueue the row is written directly (in a worker thread), and if even that
fails it waits in the stream of this process's embedded store, which every flush of this process
drains too.

Bad rows never block good ones: values are bounded to their columns when the record is made
(`analytics.usage_bounds`); a batch the database refuses is split in halves down to the rows it
refuses, which go to the DeadLetterUsage table (admin, alert); every other row is written.
Each insert also marks its hours in PendingRollup, so a late row reaches the roll-ups.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import socket
import time
import weakref
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from analytics import metrics
from analytics.rollups import usage_totals
from analytics.usage_writer import dead_letter, write_usage_payloads
from llm.redis_clients import (
    REDIS_ERRORS,
    count_unavailable,
    get_embedded_redis,
    get_embedded_sync_redis,
    get_redis,
    get_sync_redis,
    uses_real_redis,
)
from organizations.database import with_live_connection

logger = logging.getLogger(__name__)

STREAM_KEY = "gw:usage:stream"
GROUP = "writers"
CONSUMER = f"{socket.gethostname()}-{os.getpid()}"

_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]
_flushers = weakref.WeakKeyDictionary()


class MonthUsage(NamedTuple):
    requests: int
    tokens: int
    cost: Decimal
    key_cost: Decimal


async def enqueue_usage(payload: str) -> None:
    """Queue one serialised UsageRecord (usage_writer.serialise_usage)."""
    try:
        await get_redis().xadd(STREAM_KEY, {"p": payload})
    except REDIS_ERRORS as exc:
        logger.warning("Redis unavailable for usage (%s): writing directly", type(exc).__name__)
        count_unavailable("usage", "direct_write")
        await _write_directly(payload)


async def _write_directly(payload: str) -> None:
    try:
        await sync_to_async(write_usage_payloads)([payload])
    except Exception:
        logger.exception("Usage record could not be written; queued in this process for later")
        await get_embedded_redis().xadd(STREAM_KEY, {"p": payload})


def start_usage_flusher() -> None:
    """Flush every GATEWAY_USAGE_FLUSH_SECONDS on the running loop, for as long as it serves
    (started at ASGI start-up; off when the interval is 0, as it is with Redis)."""
    interval = float(settings.GATEWAY_USAGE_FLUSH_SECONDS)
    if interval <= 0:
        return
    loop = asyncio.get_running_loop()
    task = _flushers.get(loop)
    if task is None or task.done():
        _flushers[loop] = loop.create_task(_flush_forever(interval), name="usage-flusher")


async def _flush_forever(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await aflush_pending_usage()
        except Exception:
            logger.exception("Usage flush failed; retrying")


async def stop_usage_flusher() -> None:
    """Stop this loop's background flusher."""
    task = _flushers.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _queues() -> list[Any]:
    """The streams a flush of this process drains: its embedded store's (every record without
    REDIS_URL; with it, the records that could be written nowhere else), then the shared one."""
    if uses_real_redis():
        return [get_embedded_sync_redis(), get_sync_redis()]
    return [get_embedded_sync_redis()]


def _ensure_group(client: Any) -> None:
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except REDIS_ERRORS as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _write_entries(client: Any, entries: list) -> int:
    """Write stream entries, then acknowledge and delete them (after the commit)."""
    ids, payloads = [], []
    for entry_id, fields in entries:
        ids.append(entry_id)
        if fields and "p" in fields:
            payloads.append(fields["p"])
        else:
            dead_letter(json.dumps(fields), ValueError("stream entry without a payload"))
    written = write_usage_payloads(payloads) if payloads else 0
    pipe = client.pipeline(transaction=False)
    pipe.xack(STREAM_KEY, GROUP, *ids)
    pipe.xdel(STREAM_KEY, *ids)
    pipe.execute()
    return written + len(ids) - len(payloads)


def _claim_abandoned(client: Any, size: int) -> int:
    """Entries read by a flusher that never acknowledged them (it died, or its write failed)."""
    idle_ms = int(float(settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS) * 1000)
    written, start = 0, "0-0"
    while True:
        reply = client.xautoclaim(STREAM_KEY, GROUP, CONSUMER, idle_ms, start, count=size)
        start, entries = reply[0], [e for e in reply[1] if e[1] is not None]
        if entries:
            written += _write_entries(client, entries)
        if start in ("0-0", b"0-0"):
            return written


def _forget_idle_consumers(client: Any) -> None:
    # Each process reads as its own consumer; drop the ones that left nothing pending long ago.
    for consumer in client.xinfo_consumers(STREAM_KEY, GROUP):
        if consumer["pending"] == 0 and consumer["idle"] > 3_600_000:
            client.xgroup_delconsumer(STREAM_KEY, GROUP, consumer["name"])


def _oldest_waiting_age(client: Any) -> float:
    """Seconds since the oldest entry still in the stream (acknowledged entries are deleted)."""
    oldest = client.xrange(STREAM_KEY, count=1)
    if not oldest:
        return 0.0
    millis = int(str(oldest[0][0]).split("-")[0])
    return max(0.0, time.time() - millis / 1000)


def _flush_redis(client: Any) -> int:
    _ensure_group(client)
    size = int(settings.GATEWAY_USAGE_FLUSH_BATCH)
    written = _claim_abandoned(client, size)
    while True:
        reply = client.xreadgroup(GROUP, CONSUMER, {STREAM_KEY: ">"}, count=size)
        entries = reply[0][1] if reply else []
        if entries:
            written += _write_entries(client, entries)
        if len(entries) < size:
            break
    _forget_idle_consumers(client)
    return written


def flush_pending_usage() -> int:
    """Write every pending record (`_queues()`). Sync: call it from Celery, tests or shutdown
    code, never on the event loop. Returns the records handled.

    `gateway_usage_flush_last_success_timestamp_seconds` moves only when every source was drained
    (an empty queue counts), and `gateway_usage_flush_lag_seconds` is the age of the oldest entry
    left waiting, so GatewayUsageFlushLag fires only when writing has stopped."""
    written, lag = 0, 0.0
    for client in _queues():
        try:
            written += _flush_redis(client)
            lag = max(lag, _oldest_waiting_age(client))
        except REDIS_ERRORS as exc:
            logger.warning("Redis unavailable to flush usage (%s)", type(exc).__name__)
            count_unavailable("usage", "flush_skipped")
            return written
    metrics.record_usage_flush(lag_s=lag)
    return written


def count_queued_usage() -> int:
    """Usage records waiting to be written (the streams of `_queues()`)."""
    queued = 0
    for client in _queues():
        try:
            queued += client.xlen(STREAM_KEY)
        except REDIS_ERRORS:
            logger.warning("Redis unavailable to count queued usage")
    return queued


async def aflush_pending_usage() -> int:
    """`flush_pending_usage` for async code (ASGI shutdown, the background flusher)."""
    return await sync_to_async(flush_pending_usage)()


def _flush_at_exit() -> None:
    # Only the embedded store: records in a real Redis are safe and the next flusher takes them.
    try:
        _flush_redis(get_embedded_sync_redis())
    except Exception:
        logger.exception("Usage records left in this process at exit could not be written")


atexit.register(_flush_at_exit)


@with_live_connection
def _sum_month(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    now = timezone.now()
    totals = usage_totals(org_id, month_start, now)
    key_cost = Decimal(0)
    if key_id is not None:
        key_cost = usage_totals(org_id, month_start, now, api_key_id=key_id).cost
    return MonthUsage(
        requests=totals.successful_requests,
        tokens=totals.tokens,
        cost=totals.cost,
        key_cost=key_cost,
    )


async def load_month_usage(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    """What the ledger says was used since `month_start` (`analytics.rollups.usage_totals`, the
    one definition of usage in a period): billing.admission's `load_usage`.

    Requests count the successful ones (status < 400); tokens and cost count every row.
    """
    return await sync_to_async(_sum_month)(org_id, key_id, month_start)
