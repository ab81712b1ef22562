"""A tiny key-value seam for state shared between gateway processes.

Health and circuit state need only a handful of atomic single-key operations (HINCRBYFLOAT, INCR,
SET NX, GET, DEL), so they are written once against Redis's commands and run unchanged on a real
Redis (shared by every process) or on this process's embedded store (llm/redis_clients.py).
Using only single-key atomic commands keeps it to one round trip per update, with no Lua and no
WATCH retries under load.

SharedState wraps Redis so that a Redis failure never fails a request: every Redis call has a
short timeout, and on any error it logs, switches to the embedded store for a back-off period,
then tries Redis again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llm.redis_clients import get_embedded_redis

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class RedisStore:
    """The operations on a redis.asyncio client (decode_responses or not), or on the running
    loop's client of the embedded store when none is given."""

    def __init__(self, redis: Any = None) -> None:
        self._client = redis

    @property
    def _redis(self) -> Any:
        return self._client if self._client is not None else get_embedded_redis()

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
    """The given Redis while it answers, the embedded store otherwise (or when none is given);
    never raises because Redis is down."""

    def __init__(
        self,
        redis: Any = None,
        *,
        clock: Clock = time.time,
        timeout: float = 0.25,
        retry_after: float = 5.0,
    ) -> None:
        self.local = RedisStore()
        self.remote = RedisStore(redis) if redis is not None else None
        self._clock = clock
        self._timeout = timeout
        self._retry_after = retry_after
        self._remote_down_until = 0.0

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        if self.remote is not None and self._clock() >= self._remote_down_until:
            try:
                return await asyncio.wait_for(
                    getattr(self.remote, op)(*args, **kwargs), self._timeout
                )
            except Exception as exc:  # any Redis trouble degrades to local state, never to a 5xx
                log.warning("shared state unavailable (%s: %s); using the embedded store", op, exc)
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
