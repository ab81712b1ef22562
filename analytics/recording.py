"""Usage recording off the hot path: enqueue now, write to the database in batches soon after.

`await enqueue_usage(record)` costs one RPUSH (no database round trip). Flushers drain the
queue into UsageRecord rows: the Celery beat task `flush_usage_records` and, in each gateway
process, a background task started by the first enqueue (every GATEWAY_USAGE_FLUSH_SECONDS).

Nothing is lost:
- a batch moves atomically from the queue to a processing list and is trimmed from it only after
  its rows are committed, so a flusher that dies mid-batch leaves it for the next one;
- rows are inserted with ignore_conflicts on the unique request_id, so a replayed batch is
  harmless; one flusher at a time holds a short lock;
- without Redis the records wait in an in-process buffer, flushed by the background task and at
  exit (atexit, which runs when the server stops gracefully);
- if Redis fails at enqueue the row is written directly (in a worker thread), and if even that
  fails it waits in the in-process buffer.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum

from analytics.models import UsageRecord
from gateway_project.database import with_live_connection
from gateway_project.redis_client import REDIS_ERRORS, count_unavailable, get_redis, get_sync_redis

logger = logging.getLogger(__name__)

QUEUE_KEY = "gw:usage:queue"
PROCESSING_KEY = "gw:usage:processing"
LOCK_KEY = "gw:usage:flush-lock"
LOCK_SECONDS = 60
_MOVE_BATCH_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('LTRIM', KEYS[1], #items, -1)
end
return items
"""
_RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_buffer: deque[str] = deque()
_buffer_lock = threading.Lock()
_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]
_flushers = weakref.WeakKeyDictionary()


class MonthUsage(NamedTuple):
    requests: int
    tokens: int
    cost: Decimal
    key_cost: Decimal


def _fields() -> dict[str, Any]:
    return {f.attname: f for f in UsageRecord._meta.concrete_fields if not f.primary_key}


def serialise_usage(record: Mapping[str, Any]) -> str:
    """The queued form of a record: JSON of field values (ids for relations, Decimal as text)."""
    fields = _fields()
    unknown = set(record) - set(fields)
    if unknown:
        raise ValueError(f"Not UsageRecord fields: {', '.join(sorted(unknown))}")
    for required in ("request_id", "organization_id", "endpoint", "status"):
        if record.get(required) in (None, ""):
            raise ValueError(f"A usage record needs {required}")

    def encode(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    return json.dumps({k: encode(v) for k, v in record.items()}, separators=(",", ":"))


def _to_row(raw: str | bytes) -> UsageRecord:
    data = json.loads(raw)
    fields = _fields()
    values = {k: fields[k].to_python(v) for k, v in data.items()}
    return UsageRecord(**values)


def _insert(rows: list[UsageRecord]) -> None:
    with transaction.atomic():
        UsageRecord.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def _insert_one(row: UsageRecord) -> None:
    try:
        _insert([row])
        return
    except IntegrityError:
        pass
    # The key or user was deleted since (the row would have been SET_NULL): keep the row.
    row.api_key_id = None
    row.user_id = None
    try:
        _insert([row])
    except IntegrityError:
        # Its organisation is gone, and with it (CASCADE) every usage row it had.
        logger.warning("Usage record %s of a deleted organisation not written", row.request_id)


@with_live_connection
def write_usage_payloads(payloads: list[str] | list[bytes]) -> int:
    """Insert queued records; replays are no-ops. Returns how many records were handled."""
    rows = []
    for raw in payloads:
        try:
            rows.append(_to_row(raw))
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.error("Unreadable usage record dropped: %.300r", raw)
    if not rows:
        return 0
    try:
        _insert(rows)
    except IntegrityError:
        for row in rows:
            _insert_one(row)
    return len(rows)


async def enqueue_usage(record: Mapping[str, Any]) -> None:
    """Queue one UsageRecord (field values; relations as organization_id, api_key_id, user_id)."""
    payload = serialise_usage(record)
    client = get_redis()
    if client is None:
        _buffer.append(payload)
    else:
        try:
            await client.rpush(QUEUE_KEY, payload)
        except REDIS_ERRORS as exc:
            logger.warning("Redis unavailable for usage (%s): writing directly", type(exc).__name__)
            count_unavailable("usage", "direct_write")
            await _write_directly(payload)
    _ensure_flusher()


async def _write_directly(payload: str) -> None:
    try:
        await sync_to_async(write_usage_payloads)([payload])
    except Exception:
        logger.exception("Usage record could not be written; kept in memory for the next flush")
        _buffer.append(payload)


def _ensure_flusher() -> None:
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
    """Stop this loop's background flusher (it restarts with the next enqueue)."""
    task = _flushers.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _flush_buffer() -> int:
    with _buffer_lock:
        payloads = list(_buffer)
        for _ in payloads:
            _buffer.popleft()
    if not payloads:
        return 0
    try:
        return write_usage_payloads(payloads)
    except Exception:
        _buffer.extendleft(reversed(payloads))
        raise


def _flush_redis(client: Any) -> int:
    token = uuid.uuid4().hex
    if not client.set(LOCK_KEY, token, nx=True, ex=LOCK_SECONDS):
        return 0  # another flusher is draining the queue right now
    written = 0
    try:
        # A flusher that died mid-batch left it here; its rows may be in already (ignored).
        leftover = client.lrange(PROCESSING_KEY, 0, -1)
        if leftover:
            written += write_usage_payloads(leftover)
            client.ltrim(PROCESSING_KEY, len(leftover), -1)
        move = client.register_script(_MOVE_BATCH_LUA)
        size = int(settings.GATEWAY_USAGE_FLUSH_BATCH)
        while batch := move(keys=[QUEUE_KEY, PROCESSING_KEY], args=[size]):
            written += write_usage_payloads(batch)
            client.ltrim(PROCESSING_KEY, len(batch), -1)
            if len(batch) < size:
                break
    finally:
        client.register_script(_RELEASE_LOCK_LUA)(keys=[LOCK_KEY], args=[token])
    return written


def flush_pending_usage() -> int:
    """Write every pending record (in-process buffer, then the Redis queue). Sync: call it from
    Celery, tests or shutdown code, never on the event loop. Returns the records handled."""
    written = _flush_buffer()
    client = get_sync_redis()
    if client is not None:
        try:
            written += _flush_redis(client)
        except REDIS_ERRORS as exc:
            logger.warning("Redis unavailable to flush usage (%s)", type(exc).__name__)
            count_unavailable("usage", "flush_skipped")
    return written


async def aflush_pending_usage() -> int:
    """`flush_pending_usage` for async code (ASGI shutdown, the background flusher)."""
    return await sync_to_async(flush_pending_usage)()


def _flush_at_exit() -> None:
    # Only the in-process buffer: records in Redis are safe and the next flusher takes them.
    try:
        _flush_buffer()
    except Exception:
        logger.exception("Usage records left in memory at exit could not be written")


atexit.register(_flush_at_exit)


@with_live_connection
def _sum_month(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    rows = UsageRecord.objects.filter(organization_id=org_id, created_at__gte=month_start)
    totals = rows.aggregate(
        requests=Count("id", filter=Q(status__lt=400)),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost"),
    )
    key_cost = Decimal(0)
    if key_id is not None:
        key_cost = rows.filter(api_key_id=key_id).aggregate(cost=Sum("cost"))["cost"] or key_cost
    return MonthUsage(
        requests=totals["requests"] or 0,
        tokens=(totals["input_tokens"] or 0) + (totals["output_tokens"] or 0),
        cost=totals["cost"] or Decimal(0),
        key_cost=key_cost,
    )


async def load_month_usage(org_id: int, key_id: int | None, month_start: datetime) -> MonthUsage:
    """What the database says was used since `month_start`: billing.admission's `load_usage`.

    Requests count the successful ones (status < 400); tokens and cost count every row.
    """
    return await sync_to_async(_sum_month)(org_id, key_id, month_start)
