"""Usage rows held beside admission reservations: a request whose process dies still ends in
exactly one usage row, and its hold is given back within a minute instead of at its expiry.

With Redis, each gateway process has an id and a heartbeat (`gw:procs`, a sorted set of process
id -> last beat, refreshed every GATEWAY_PROCESS_HEARTBEAT_SECONDS by a task started in the ASGI
lifespan, and by every admission). Admitting a request stores, beside its reservation, the usage
row the edge would write if nothing more were known (`gw:inflight:<process>`, a hash of
reservation id -> JSON of the row and the reservation); settling or releasing the reservation
deletes it. Both happen inside admission's scripts (billing/admission_scripts.py), so neither
costs a round trip of its own.

`billing.sweeper.sweep_interrupted_requests` (Celery beat) turns the held rows of processes
whose heartbeat stopped into usage rows with outcome `interrupted`.

Without REDIS_URL (the embedded store) there is one process and nothing outlives it: nothing is
held, and the sweeper finds nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import orjson
from django.conf import settings

from analytics.usage_writer import dump_usage
from llm.redis_clients import REDIS_ERRORS, get_redis

logger = logging.getLogger(__name__)

PROCESSES_KEY = "gw:procs"
PROCESS_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_background: set[asyncio.Task] = set()


def held_key(process_id: str) -> str:
    return f"gw:inflight:{process_id}"


def held_row(reservation: Any, row: dict[str, Any]) -> str:
    """What is held beside the reservation (billing.admission's Reservation) until it is settled:
    `row` (UsageRecord field values) and the reservation, as JSON. Admission's script stores it
    (under the reservation id, in `held_key(PROCESS_ID)`) in the same command that admits. The
    script's admission time is not known yet, so the held reservation has none: a sweeper settles
    it without correcting the token windows (they keep the estimate until it slides out)."""
    fields = _reservation_fields(reservation) | {"admitted_at": None}
    # Bounded to its columns only if the sweeper ever writes it (billing/sweeper.py): rarely.
    return f'{{"row":{dump_usage(row)},"reservation":{orjson.dumps(fields).decode()}}}'


def in_background(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` in a task the process owns, not the caller's (which is being cancelled);
    `drain()` waits for it when the process stops."""
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain() -> None:
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


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
    fields = dict(vars(reservation))  # its fields (flat: asdict's deep copy is not needed)
    fields["reserved_cost"] = str(reservation.reserved_cost)
    return fields
