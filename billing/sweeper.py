"""The sweeper: the requests of a gateway process that died become usage rows.

`sweep_interrupted_requests` (Celery beat, every GATEWAY_SWEEP_SECONDS) takes the rows held
beside reservations (billing/inflight.py) of every process whose heartbeat is older than
GATEWAY_PROCESS_DEAD_SECONDS and, for each: writes its row with outcome `interrupted` (committed
first; the request id is unique, so a replay or a late real row changes nothing), takes it off
the held hash (only one sweeper wins), then settles the reservation with what the row bills, so
the hold is given back at once and the month's meters count the row. A held row whose request
already has its row (its process recorded it, but could not settle the hold: Redis failed) is
not billed again: the hold is only given back.

The billing policy of an interrupted request: the prompt only, as estimated at admission (the
provider may well have received and charged it), no output (nothing says any was produced),
flagged as estimated.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from analytics.usage_writer import is_recorded, serialise_usage, write_usage_payloads
from billing.admission import Reservation, release, settle
from billing.inflight import PROCESSES_KEY, held_key
from llm.redis_clients import get_sync_redis

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
BILLING_REASON = "process_died_prompt_only"


def interrupted_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The held row as an interrupted request bills it: the prompt as estimated, no output."""
    return {
        **row,
        "output_tokens": 0,
        "status": row.get("status") or 500,
        "error_class": INTERRUPTED,
        "tokens_estimated": True,
        "outcome": INTERRUPTED,
        "billing_reason": BILLING_REASON,
    }


def sweep_interrupted_requests(now: float | None = None) -> int:
    """Turn the held rows of dead processes into usage rows; returns how many were written."""
    client = get_sync_redis()
    now = time.time() if now is None else now
    dead_before = now - float(settings.GATEWAY_PROCESS_DEAD_SECONDS)
    swept = 0
    for process_id in client.zrangebyscore(PROCESSES_KEY, "-inf", dead_before):
        key = held_key(process_id)
        for reservation_id, raw in client.hgetall(key).items():
            swept += _sweep_one(client, key, reservation_id, raw)
        # Forgotten only if no beat came meanwhile (a stalled process that came back).
        if (client.zscore(PROCESSES_KEY, process_id) or 0) <= dead_before:
            client.zrem(PROCESSES_KEY, process_id)
    return swept


def _sweep_one(client: Any, key: str, reservation_id: str, raw: str) -> int:
    held = json.loads(raw)
    row = interrupted_row(held["row"])
    recorded = is_recorded(row["request_id"])
    if not recorded:
        write_usage_payloads([serialise_usage(row)])  # committed before the hold goes
    if not client.hdel(key, reservation_id):
        return 0  # another sweeper had it
    reservation = _reservation_from(held["reservation"])
    if recorded:  # its row was written, and billed if it could be: nothing more to bill
        async_to_sync(release)(reservation)
        logger.info("request %s of a dead process already had its row", row["request_id"])
        return 0
    tokens = int(row.get("input_tokens") or 0)
    async_to_sync(settle)(reservation, tokens, Decimal(row.get("cost") or 0))
    logger.warning("request %s of a dead process recorded as interrupted", row["request_id"])
    return 1


def _reservation_from(fields: dict[str, Any]) -> Reservation:
    # A row held in admission's round trip has no admission time: without it the token windows'
    # bucket is unknown, so they are left as reserved (the estimate slides out with the window).
    timed = fields.get("admitted_at") is not None
    return Reservation(
        **{
            **fields,
            "reserved_cost": Decimal(fields["reserved_cost"]),
            "token_windows": tuple(tuple(w) for w in fields["token_windows"]) if timed else (),
            "admitted_at": fields["admitted_at"] if timed else 0.0,
            "done": False,
        }
    )
