"""A month's usage, loaded from the database into admission's store when the store lacks it.

After Redis restarts (or a month begins) every request finds its month missing: the requests of
one process then wait for one query per organisation, key and month instead of each running it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from billing.limit_checks import to_nano


class MonthUsage(Protocol):
    """What the database says an organisation (and one of its keys) used in a month."""

    requests: int
    tokens: int
    cost: Decimal
    key_cost: Decimal


UsageLoader = Callable[[int, int | None, datetime], Awaitable[MonthUsage]]


# Month loads in flight, per event loop.
_loads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, asyncio.Future]]
_loads = weakref.WeakKeyDictionary()


async def load_month(
    load_usage: UsageLoader | None, org_id: int, key_id: int | None, month_start: datetime
) -> list[int]:
    """The month's usage as ADMIT's init arguments: requests, tokens, nano-dollars spent by the
    organisation and by the key (zeros without a loader)."""
    if load_usage is None:
        return [0, 0, 0, 0]
    loads = _loads.setdefault(asyncio.get_running_loop(), {})
    key = (load_usage, org_id, key_id, month_start)
    load = loads.get(key)
    if load is None:
        load = loads[key] = asyncio.ensure_future(load_usage(org_id, key_id, month_start))
        load.add_done_callback(lambda done: _forget(loads, key, done))
    usage = await asyncio.shield(load)  # one waiter cancelled must not cancel the others' load
    return [
        int(usage.requests),
        int(usage.tokens),
        to_nano(Decimal(usage.cost)),
        to_nano(Decimal(usage.key_cost)),
    ]


def _forget(loads: dict[tuple, asyncio.Future], key: tuple, done: asyncio.Future) -> None:
    loads.pop(key, None)
    if not done.cancelled():
        done.exception()  # retrieved: every waiter may have gone
