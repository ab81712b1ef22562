"""Usage rows held beside admission reservations: a request whose process dies still ends in
exactly one usage row, and its hold is given back within a minute instead of at its expiry.

With Redis, each gateway process has an id and a heartbeat (`gw:procs`, a sorted set of process
id -> last beat, refreshed every GATEWAY_PROCESS_HEARTBEAT_SECONDS by a task started in the ASGI
lifespan). Admitting a request stores, beside its reservation, the usage row the edge would
write if nothing more were known (`gw:inflight:<process>`, a hash of reservation id -> JSON of
the row and the reservation); settling or releasing the reservation deletes it.

`billing.sweeper.sweep_interrupted_requests` (Celery beat) turns the held rows of processes
whose heartbeat stopped into usage rows with outcome `interrupted`.

Without REDIS_URL (the embedded store) there is one process and nothing outlives it: nothing is
held, and the sweeper finds nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import redis
from django.conf import settings

from analytics.usage_writer import serialise_usage
from llm.redis_clients import REDIS_ERRORS, count_unavailable, get_redis

logger = logging.getLogger(__name__)

PROCESSES_KEY = "gw:procs"
PROCESS_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def held_key(process_id: str) -> str:
    return f"gw:inflight:{process_id}"


def hold_usage_row(pipe: Any, reservation: Any, row: Mapping[str, Any]) -> None:
    """Keep `row` (UsageRecord field values) beside the reservation (billing.admission's
    Reservation) until it is settled: queued on the caller's pipeline, admission's own round
    trip. The script's admission time is not known yet, so the held reservation has none: a
    sweeper settles it without correcting the token windows (they keep the estimate until it
    slides out)."""
    held = {
        "row": json.loads(serialise_usage(row)),
        "reservation": _reservation_fields(reservation) | {"admitted_at": None},
    }
    pipe.hset(held_key(PROCESS_ID), reservation.id, json.dumps(held))
    pipe.zadd(PROCESSES_KEY, {PROCESS_ID: time.time()})


async def run_and_hold(
    lua: str, sha: str, keys: list[str], args: list[Any], reservation: Any, row: Mapping[str, Any]
) -> Any:
    """Admission's script and the held usage row in one round trip: the script's reply."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.evalsha(sha, len(keys), *keys, *args)
    hold_usage_row(pipe, reservation, row)
    result, *held = await pipe.execute(raise_on_error=False)
    if isinstance(result, redis.exceptions.NoScriptError):
        result = await client.eval(lua, len(keys), *keys, *args)
    elif isinstance(result, BaseException):
        raise result
    if any(isinstance(reply, BaseException) for reply in held):
        logger.warning("Redis unavailable to hold a usage row")
        count_unavailable("inflight", "not_held")
    return result


async def let_go(reservation: Any) -> None:
    """The request held beside `reservation` was not admitted: its row is not held."""
    try:
        await get_redis().hdel(held_key(PROCESS_ID), reservation.id)
    except REDIS_ERRORS as exc:
        logger.warning("Redis unavailable to let go of a held usage row (%s)", type(exc).__name__)


def drop_usage_row(pipe: Any, reservation: Any) -> None:
    """The request settled (or was released): its held row goes, on the caller's pipeline (the
    settlement's own round trip)."""
    pipe.hdel(held_key(PROCESS_ID), reservation.id)


async def keep_alive_forever() -> None:
    """This process's heartbeat, for as long as it serves (started by the ASGI lifespan)."""
    interval = float(settings.GATEWAY_PROCESS_HEARTBEAT_SECONDS)
    while True:
        try:
            await get_redis().zadd(PROCESSES_KEY, {PROCESS_ID: time.time()})
        except REDIS_ERRORS as exc:
            logger.warning("Redis unavailable for the heartbeat (%s)", type(exc).__name__)
        await asyncio.sleep(interval)


def _reservation_fields(reservation: Any) -> dict[str, Any]:
    fields = asdict(reservation)
    fields["reserved_cost"] = str(reservation.reserved_cost)
    return fields
