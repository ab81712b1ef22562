"""Usage rows held beside admission reservations: a request whose process dies still ends in
exactly one usage row, and its hold is given back within a minute instead of at its expiry.

With Redis, each gateway process has an id and a heartbeat (`gw:procs`, a sorted set of process
id -> last beat, refreshed every GATEWAY_PROCESS_HEARTBEAT_SECONDS by a task started in the ASGI
lifespan). Admitting a request stores, beside its reservation, the usage row the edge would
write if nothing more were known (`gw:inflight:<process>`, a hash of reservation id -> JSON of
the row and the reservation); settling or releasing the reservation deletes it.

`sweep_interrupted_requests` (Celery beat) takes the held rows of every process whose heartbeat
is older than GATEWAY_PROCESS_DEAD_SECONDS and, for each: writes its row with outcome
`interrupted` (the request id is unique, so a replay or a late real row changes nothing), then
settles the reservation with what the row bills. The billing policy of an interrupted request:
the prompt only, as estimated at admission (the provider may well have received and charged
it), no output (nothing says any was produced), flagged as estimated.

Without Redis there is one process and nothing outlives it: nothing is held, nothing is swept.
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
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from analytics.recording import serialise_usage, write_usage_payloads
from analytics.usage_bounds import usage_fields
from billing import admission
from gateway_project.redis_client import REDIS_ERRORS, count_unavailable, get_redis, get_sync_redis

logger = logging.getLogger(__name__)

PROCESSES_KEY = "gw:procs"
PROCESS_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
INTERRUPTED = "interrupted"
BILLING_REASON = "process_died_prompt_only"


def _held_key(process_id: str) -> str:
    return f"gw:inflight:{process_id}"


def interrupted_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The held row as an interrupted request bills it: the prompt as estimated, no output."""
    policy = {
        "output_tokens": 0,
        "status": row.get("status") or 500,
        "error_class": INTERRUPTED,
        "tokens_estimated": True,
        "outcome": INTERRUPTED,
        "billing_reason": BILLING_REASON,
    }
    columns = usage_fields()
    return {**row, **{name: value for name, value in policy.items() if name in columns}}


async def hold_usage_row(reservation: admission.Reservation | None, row: Mapping[str, Any]) -> None:
    """Keep `row` (UsageRecord field values) beside the reservation until it is settled."""
    if reservation is None or not reservation.in_redis:
        return
    client = get_redis()
    if client is None:
        return
    held = {
        "row": json.loads(serialise_usage(row)),
        "reservation": _reservation_fields(reservation),
    }
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hset(_held_key(PROCESS_ID), reservation.id, json.dumps(held))
        pipe.zadd(PROCESSES_KEY, {PROCESS_ID: time.time()})
        await pipe.execute()
    except REDIS_ERRORS as exc:
        logger.warning("Redis unavailable to hold a usage row (%s)", type(exc).__name__)
        count_unavailable("inflight", "not_held")


async def drop_usage_row(reservation: admission.Reservation | None) -> None:
    """The request settled (or was released): its held row is no longer needed."""
    if reservation is None or not reservation.in_redis:
        return
    client = get_redis()
    if client is None:
        return
    try:
        await client.hdel(_held_key(PROCESS_ID), reservation.id)
    except REDIS_ERRORS as exc:
        logger.warning("Redis unavailable to drop a held usage row (%s)", type(exc).__name__)


async def keep_alive_forever() -> None:
    """This process's heartbeat, for as long as it serves (started by the ASGI lifespan)."""
    interval = float(settings.GATEWAY_PROCESS_HEARTBEAT_SECONDS)
    while True:
        client = get_redis()
        if client is not None:
            try:
                await client.zadd(PROCESSES_KEY, {PROCESS_ID: time.time()})
            except REDIS_ERRORS as exc:
                logger.warning("Redis unavailable for the heartbeat (%s)", type(exc).__name__)
        await asyncio.sleep(interval)


def sweep_interrupted_requests(now: float | None = None) -> int:
    """Turn the held rows of dead processes into usage rows; returns how many were written."""
    client = get_sync_redis()
    if client is None:
        return 0
    now = time.time() if now is None else now
    dead_before = now - float(settings.GATEWAY_PROCESS_DEAD_SECONDS)
    swept = 0
    for process_id in client.zrangebyscore(PROCESSES_KEY, "-inf", dead_before):
        key = _held_key(process_id)
        for reservation_id, raw in client.hgetall(key).items():
            swept += _sweep_one(client, key, reservation_id, raw, now)
        # Forgotten only if no beat came meanwhile (a stalled process that came back).
        if (client.zscore(PROCESSES_KEY, process_id) or 0) <= dead_before:
            client.zrem(PROCESSES_KEY, process_id)
    return swept


def _sweep_one(client: Any, key: str, reservation_id: str, raw: str, now: float) -> int:
    held = json.loads(raw)
    row = interrupted_row(held["row"])
    write_usage_payloads([serialise_usage(row)])  # committed before the hold goes
    if not client.hdel(key, reservation_id):
        return 0  # another sweeper had it
    reservation = _reservation_from(held["reservation"])
    tokens = int(row.get("input_tokens") or 0)
    async_to_sync(admission.settle)(reservation, tokens, Decimal(row.get("cost") or 0), now=now)
    logger.warning("request %s of a dead process recorded as interrupted", row["request_id"])
    return 1


def _reservation_fields(reservation: admission.Reservation) -> dict[str, Any]:
    fields = asdict(reservation)
    fields["reserved_cost"] = str(reservation.reserved_cost)
    fields["token_windows"] = list(reservation.token_windows)
    return fields


def _reservation_from(fields: dict[str, Any]) -> admission.Reservation:
    return admission.Reservation(
        **{
            **fields,
            "reserved_cost": Decimal(fields["reserved_cost"]),
            "token_windows": tuple(fields["token_windows"]),
            "done": False,
        }
    )
