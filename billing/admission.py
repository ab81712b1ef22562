"""Admission control: rate limits, monthly quotas and spend budgets, checked and held at once.

`admit()` runs ONE atomic step (a Lua script via EVALSHA on Redis: llm/redis_clients.py, the
embedded store without REDIS_URL): every window counter and monthly meter is checked, and only
if all pass is everything counted and the worst case reserved. The pipeline then calls
`settle()` with the actual usage, or `release()` when the request failed before reaching a
provider.

- Windows slide (minute, hour, day) on Redis's clock: no span of a window's length admits more
  than its limit; `retry_after` is the time until enough of the window's count has left it.
  The organisation's windows come from its plan; an API key's overrides add windows of their
  own, so an override narrows a key but never lifts the organisation's plan.
- Monthly meters (requests, tokens, spend) belong to the organisation and calendar month (UTC);
  a key's spend is metered beside them. A month missing from the store starts from `load_usage`.
- Money is integer nano-dollars in the store: reservations round up, settlements are exact to
  nine places (Lua numbers stay exact up to about nine million dollars a month).
- Reservations expire after GATEWAY_RESERVATION_TTL_SECONDS: a crashed process's holds stop
  counting on the next run that touches the organisation.
- Redis failing, with GATEWAY_RATE_LIMIT_FAIL_OPEN (the default): each process enforces its
  share of every rate window (limit / GATEWAY_EXPECTED_PROCESSES, at least 1) with the same
  script on its own embedded store; monthly quotas and budgets go unchecked until Redis is back.
  Logged at ERROR, counted in gateway_redis_unavailable_total{outcome="process_share"} (the
  GatewayRedisUnavailable alert). Without fail-open: refused as "unavailable". Never raised.
- A caller cancelled before its admission's reply (a client that hung up) holds nothing: the
  script still runs, and what it reserved is given back once its reply is in.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from hashlib import sha1
from typing import Any

from django.conf import settings

from analytics.logs import new_unique_id
from analytics.recording import STREAM_KEY
from billing import inflight
from billing.admission_scripts import ADMIT_LUA, SETTLE_LUA, ceil_seconds
from billing.limit_checks import (
    Check,
    amounts,
    build_checks,
    from_nano,
    key_prefix,
    month_bounds,
    to_nano,
)
from billing.limits import PlanLimits
from billing.month_loads import UsageLoader, load_month
from llm.redis_clients import (
    REDIS_ERRORS,
    count_unavailable,
    get_embedded_redis,
    get_redis,
    uses_real_redis,
)
from llm.redis_scripts import Orphaned, run_script

logger = logging.getLogger(__name__)

_ADMIT_SHA = sha1(ADMIT_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
_SETTLE_SHA = sha1(SETTLE_LUA.encode()).hexdigest()  # noqa: S324
# A settlement's client has its answer: its script may wait this long for the next admission of
# the process to share a round trip with (llm/redis_scripts.py). The hold lasts that much longer.
SETTLE_LINGER_SECONDS = 0.005


@dataclass
class Reservation:
    """The hold of one admitted request; pass it to `settle()` or `release()` exactly once."""

    id: str
    org_id: int
    key_id: int | None
    month: str  # YYYYMM, UTC
    estimated_tokens: int
    reserved_cost: Decimal
    token_windows: tuple[tuple[str, int], ...]  # (key, period in seconds)
    in_redis: bool  # held in a real Redis, shared by processes (not this process's embedded one)
    admitted_at: float = 0.0  # on the store's clock: the bucket its tokens were counted in
    done: bool = False


@dataclass
class Admission:
    admitted: bool
    kind: str | None = None  # refused: "rate_limit", "quota", "budget" or "unavailable"
    limit_name: str = ""  # e.g. "requests per minute of the Free plan"
    limit: int | None = None  # for X-RateLimit-Limit (None: no request limit applies)
    remaining: int | None = None  # for X-RateLimit-Remaining
    reset: int | None = None  # seconds until that limit's window starts again (X-RateLimit-Reset)
    retry_after: int | None = None  # refused: seconds to wait (Retry-After)
    reservation: Reservation | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if self.admitted:
            return ""
        if self.kind == "unavailable":
            return "Rate limiting is unavailable; please retry shortly."
        if self.kind == "rate_limit":
            return f"Rate limit reached: {self.limit_name}. Retry after {self.retry_after} s."
        return f"Limit reached: {self.limit_name}. It resets at the start of next month."


async def _run(lua: str, sha: str, keys: list[str], args: list[Any], **batching: Any) -> Any:
    # Sent with the scripts other requests of this process run in the same turn of the loop
    # (`batching`: run_script's orphaned and linger).
    return await run_script(get_redis(), lua, sha, keys, args, **batching)


async def admit(
    org_id: int,
    key_id: int | None,
    limits: PlanLimits,
    key_overrides: Any = None,
    estimated_tokens: int = 0,
    worst_case_cost: Decimal = Decimal(0),
    *,
    load_usage: UsageLoader | None = None,
    usage_row: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> Admission:
    """Check every limit and, only if all pass, count the request and reserve its worst case.

    `key_overrides` is anything with ApiKey's override attributes (the ApiKey row itself).
    `load_usage(org_id, key_id, month_start)` is awaited only when the month is not yet in the
    store; without it a missing month starts from zero. `usage_row` (UsageRecord field values:
    the request id, organisation, key, model, the prompt estimate and its cost) is held beside
    the reservation until it is settled, so the request gets its row even if this process dies
    (billing/inflight.py). `now` replaces the store's clock (tests).
    """
    if estimated_tokens < 0 or worst_case_cost < 0:
        raise ValueError("estimated_tokens and worst_case_cost must not be negative")
    clock = "" if now is None else repr(now)
    now = time.time() if now is None else now  # names the month; windows use the store's clock
    month, month_start, month_end = month_bounds(now)
    cost_nano = to_nano(worst_case_cost)
    windows, meters = build_checks(org_id, key_id, limits, key_overrides)
    checks = meters + windows
    added = amounts(checks, estimated_tokens, cost_nano)  # what this request adds to each
    meters_added, windows_added = added[: len(meters)], added[len(meters) :]
    prefix = key_prefix(org_id)
    reservation_id = new_unique_id()  # no system call, unlike uuid4
    ttl = float(settings.GATEWAY_RESERVATION_TTL_SECONDS)
    keys = [f"{prefix}m:{month}", f"{prefix}res", f"{prefix}resx"]
    keys += [inflight.held_key(inflight.PROCESS_ID), inflight.PROCESSES_KEY]
    keys += [w.key for w in windows]
    key_field = f"k:{key_id}:" if key_id is not None else ""
    tail: list[Any] = [len(meters)]
    for m, amount in zip(meters, meters_added, strict=True):
        tail += [m.field, m.limit, amount]
    for w, amount in zip(windows, windows_added, strict=True):
        tail += [w.limit, amount, w.period]
    month_ttl = math.ceil(month_end - now) + 40 * 86400
    head: list[Any] = [clock, reservation_id, repr(ttl), month_ttl, key_field]
    reservation = Reservation(
        id=reservation_id,
        org_id=org_id,
        key_id=key_id,
        month=month,
        estimated_tokens=estimated_tokens,
        reserved_cost=from_nano(cost_nano),
        token_windows=tuple((w.key, w.period) for w in windows if not w.counts_requests),
        in_redis=uses_real_redis(),
    )
    # Only a shared Redis outlives this process: the embedded store holds nothing.
    held = ""
    if usage_row is not None and reservation.in_redis:
        held = inflight.held_row(reservation, usage_row)
    tail += [held, inflight.PROCESS_ID, repr(time.time())]
    orphaned: Orphaned = partial(_give_back, reservation)  # the caller went before the reply
    try:
        args = [*head, 0, 0, 0, 0, 0, *tail]
        result = await _run(ADMIT_LUA, _ADMIT_SHA, keys, args, orphaned=orphaned)
        if result[0] == "init":
            init = await load_month(load_usage, org_id, key_id, month_start)
            args = [*head, 1, *init, *tail]
            result = await _run(ADMIT_LUA, _ADMIT_SHA, keys, args, orphaned=orphaned)
    except REDIS_ERRORS as exc:
        if not settings.GATEWAY_RATE_LIMIT_FAIL_OPEN:
            return _refuse_without_redis(exc)
        return await _admit_within_process_share(exc, windows, windows_added, keys[:5], head)
    store_now, values = float(result[1]), [int(v) for v in result[2:]]
    currents = values[: len(meters)] + values[len(meters) :: 2]
    # A meter starts again next month; a window's wait is the script's.
    waits = [month_end - now] * len(meters) + [ms / 1000 for ms in values[len(meters) + 1 :: 2]]
    if result[0] == "no":
        return _refusal(checks, added, currents, waits)
    reservation.admitted_at = store_now
    return _admitted(checks, currents, waits, reservation)


def _give_back(reservation: Reservation, reply: Any) -> None:
    if reply[0] == "ok":  # admitted, but its caller is gone: nobody else would settle it
        inflight.in_background(release(reservation))


def _admitted(
    checks: Sequence[Check],
    currents: list[int],
    waits: list[float],
    reservation: Reservation | None,
) -> Admission:
    """An admission, with the rate-limit headers of its tightest request window."""
    admission = Admission(admitted=True, reservation=reservation)
    request_windows = [
        (c.limit - cur - 1, c, wait)
        for c, cur, wait in zip(checks, currents, waits, strict=True)
        if c.counts_requests
    ]
    if request_windows:
        remaining, tightest, wait = min(request_windows, key=lambda row: row[0])
        admission.limit, admission.remaining = tightest.limit, remaining
        admission.reset = ceil_seconds(wait)
    admission.headers = _headers(admission)
    return admission


def _refusal(
    checks: Sequence[Check], added: list[int], currents: list[int], waits: list[float]
) -> Admission:
    refused = [
        (c, cur, wait)
        for c, amount, cur, wait in zip(checks, added, currents, waits, strict=True)
        if c.limit >= 0 and cur + amount > c.limit
    ]
    # The longest wait is the one that matters: until then some limit still refuses.
    check, current, wait = max(refused, key=lambda row: row[2])
    retry_after = ceil_seconds(wait)
    is_money = check.kind == "budget"
    admission = Admission(
        admitted=False,
        kind=check.kind,
        limit_name=check.name,
        limit=None if is_money else check.limit,
        remaining=None if is_money else max(0, check.limit - current),
        reset=retry_after,
        retry_after=retry_after,
    )
    admission.headers = _headers(admission)
    return admission


def _headers(admission: Admission) -> dict[str, str]:
    headers = {}
    if admission.limit is not None:
        headers["X-RateLimit-Limit"] = str(admission.limit)
        headers["X-RateLimit-Remaining"] = str(admission.remaining)
        headers["X-RateLimit-Reset"] = str(admission.reset)
    if admission.retry_after is not None:
        headers["Retry-After"] = str(admission.retry_after)
    return headers


async def _admit_within_process_share(
    exc: Exception, windows: Sequence[Check], added: list[int], first_keys: list[str], head: list
) -> Admission:
    """Redis is away: this process enforces its share of each rate window on its embedded store,
    so N processes together admit about the limit, not N times it and not without bound."""
    processes = max(1, int(settings.GATEWAY_EXPECTED_PROCESSES))
    logger.error(
        "Redis unavailable for admission (%s): enforcing 1/%d of each rate limit per process; "
        "monthly quotas unchecked until it is back",
        type(exc).__name__,
        processes,
    )
    count_unavailable("admission", "process_share")
    shares = [
        dataclasses.replace(w, limit=max(1, w.limit // processes) if w.limit > 0 else w.limit)
        for w in windows
    ]
    tail: list[Any] = [0]  # no monthly meters
    for w, amount in zip(shares, added, strict=True):
        tail += [w.limit, amount, w.period]
    tail += ["", "", 0]  # nothing held: the embedded store does not outlive this process
    keys = first_keys + [w.key for w in shares]
    result = await get_embedded_redis().eval(
        ADMIT_LUA, len(keys), *keys, *head, 1, 0, 0, 0, 0, *tail
    )
    values = [int(v) for v in result[2:]]
    currents, waits = values[0::2], [ms / 1000 for ms in values[1::2]]
    if result[0] == "no":
        return _refusal(shares, added, currents, waits)
    return _admitted(shares, currents, waits, None)


def _refuse_without_redis(exc: BaseException) -> Admission:
    logger.warning("Redis unavailable for admission (%s): refusing", type(exc).__name__)
    count_unavailable("admission", "fail_closed")
    admission = Admission(
        admitted=False, kind="unavailable", limit_name="rate limiting", retry_after=1
    )
    admission.headers = _headers(admission)
    return admission


async def settle(
    reservation: Reservation | None,
    actual_tokens: int,
    actual_cost: Decimal,
    *,
    usage_payload: str | None = None,
) -> bool:
    """Replace the reservation with the actual usage (tokens, exact cost); once per request.

    `usage_payload` (a serialised usage record) is queued in the same Redis round trip; returns
    whether it was, so the caller queues it another way when not."""
    tokens, nano = max(0, actual_tokens), max(0, to_nano(actual_cost))
    return await _finish(reservation, 1, tokens, nano, usage_payload)


async def release(reservation: Reservation | None, *, usage_payload: str | None = None) -> bool:
    """Give the reservation back: the request failed before any provider was called.

    The request still counts against the request windows (it was made), not the month.
    """
    return await _finish(reservation, 0, 0, 0, usage_payload)


async def _finish(
    reservation: Reservation | None,
    requests: int,
    tokens: int,
    nano: int,
    usage_payload: str | None,
) -> bool:
    if reservation is None or reservation.done:
        return False
    reservation.done = True
    if reservation.in_redis != uses_real_redis():
        return False  # the store changed under us (settings in tests); nothing of ours is there
    prefix = key_prefix(reservation.org_id)
    keys = [f"{prefix}res", f"{prefix}resx", f"{prefix}m:{reservation.month}"]
    keys += [inflight.held_key(inflight.PROCESS_ID), STREAM_KEY]
    keys += [key for key, _ in reservation.token_windows]
    key_field = f"k:{reservation.key_id}:" if reservation.key_id is not None else ""
    delta = tokens - reservation.estimated_tokens if requests else -reservation.estimated_tokens
    # The embedded store queues nothing here: the caller queues the record its own way.
    queued = reservation.in_redis and usage_payload is not None
    args = [reservation.id, key_field, requests, tokens, nano, delta]
    args += [repr(reservation.admitted_at), usage_payload if queued else ""]
    args += [period for _, period in reservation.token_windows]
    try:
        await _run(SETTLE_LUA, _SETTLE_SHA, keys, args, linger=SETTLE_LINGER_SECONDS)
    except REDIS_ERRORS as exc:
        # The hold expires by itself; this request's usage is missing from the month's counters,
        # and its held row stays until the process's end (the sweeper finds it then).
        logger.warning("Redis unavailable to settle a reservation (%s)", type(exc).__name__)
        count_unavailable("admission", "settle_lost")
        return False
    return queued
