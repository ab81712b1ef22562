"""A tiny key-value seam for state shared between gateway processes.

Health and circuit state need only a handful of atomic single-key operations (HINCRBYFLOAT, INCR,
SET NX, GET, DEL), so they are written once against this interface and run unchanged on Redis
(shared by every process) or in memory (one process). Using only single-key atomic commands keeps
it to one round trip per update, with no Lua and no WATCH retries under load.

SharedState wraps Redis so that a Redis failure never fails a request: every Redis call has a
short timeout, and on any error it logs, switches to the in-memory store for a back-off period,
then tries Redis again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class MemoryStore:
    """In-process implementation; expiry follows the injected clock."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._data: dict[str, Any] = {}
        self._expires: dict[str, float] = {}

    def _live(self, key: str) -> bool:
        expires = self._expires.get(key)
        if expires is not None and self._clock() >= expires:
            self._data.pop(key, None)
            self._expires.pop(key, None)
        return key in self._data

    def _touch(self, key: str, ttl: float | None) -> None:
        if ttl is not None:
            self._expires[key] = self._clock() + ttl

    async def hincr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        if not self._live(key):
            self._data[key] = {}
        table = self._data[key]
        for name, amount in amounts.items():
            table[name] = table.get(name, 0.0) + amount
        self._touch(key, ttl)
        return {name: table[name] for name in amounts}

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self._data[k]) if self._live(k) else {} for k in keys]

    async def incr(self, key: str, ttl: float) -> int:
        value = int(self._data[key]) + 1 if self._live(key) else 1
        self._data[key] = value
        self._touch(key, ttl)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [str(self._data[k]) if self._live(k) else None for k in keys]

    async def set(self, key: str, value: str, ttl: float, *, only_new: bool = False) -> bool:
        if only_new and self._live(key):
            return False
        self._data[key] = value
        self._touch(key, ttl)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)
            self._expires.pop(key, None)


class RedisStore:
    """The same operations on a redis.asyncio client (decode_responses or not)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def hincr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        pipe = self._redis.pipeline(transaction=False)
        for name, amount in amounts.items():
            pipe.hincrbyfloat(key, name, amount)
        pipe.expire(key, max(1, int(ttl)))
        *values, _ = await pipe.execute()
        return {name: float(v) for name, v in zip(amounts, values, strict=True)}

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, float]]:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        rows = await pipe.execute()
        return [{_text(k): float(v) for k, v in row.items()} for row in rows]

    async def incr(self, key: str, ttl: float) -> int:
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, max(1, int(ttl)))
        value, _ = await pipe.execute()
        return int(value)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return [None if v is None else _text(v) for v in await self._redis.mget(list(keys))]

    async def set(self, key: str, value: str, ttl: float, *, only_new: bool = False) -> bool:
        return bool(await self._redis.set(key, value, px=max(1, int(ttl * 1000)), nx=only_new))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*keys)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedState:
    """Redis when given and healthy, memory otherwise; never raises because Redis is down."""

    def __init__(
        self,
        redis: Any = None,
        *,
        clock: Clock = time.time,
        timeout: float = 0.25,
        retry_after: float = 5.0,
    ) -> None:
        self.local = MemoryStore(clock)
        self.remote = RedisStore(redis) if redis is not None else None
        self._clock = clock
        self._timeout = timeout
        self._retry_after = retry_after
        self._remote_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self.remote is not None

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        if self.remote is not None and self._clock() >= self._remote_down_until:
            try:
                return await asyncio.wait_for(
                    getattr(self.remote, op)(*args, **kwargs), self._timeout
                )
            except Exception as exc:  # any Redis trouble degrades to local state, never to a 5xx
                log.warning("shared state unavailable (%s: %s); using local state", op, exc)
                self._remote_down_until = self._clock() + self._retry_after
        return await getattr(self.local, op)(*args, **kwargs)

    async def hincr(self, key: str, amounts: Mapping[str, float], ttl: float) -> dict[str, float]:
        return await self._call("hincr", key, amounts, ttl)

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, float]]:
        return await self._call("hgetall_many", keys)

    async def incr(self, key: str, ttl: float) -> int:
        return await self._call("incr", key, ttl)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return await self._call("get_many", keys)

    async def set(self, key: str, value: str, ttl: float, *, only_new: bool = False) -> bool:
        return await self._call("set", key, value, ttl, only_new=only_new)

    async def delete(self, *keys: str) -> None:
        await self._call("delete", *keys)
