"""The process-wide Redis clients, from settings.REDIS_URL (None when Redis is not configured),
and the embedded one: an in-process fakeredis (with lupa, so the same Lua scripts run) for
features that keep working without a Redis server, per process.

An asyncio client is bound to the event loop it first connects on, so `get_redis()` keeps one
client per running loop (the ASGI server has one; tests and `async_to_sync` make others).
Timeouts are short: a Redis that does not answer must degrade a feature, not stall requests.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import fakeredis
import redis
import redis.asyncio
from django.conf import settings
from prometheus_client import Counter

# What a failing Redis raises: its own errors, and socket errors that escape them.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)

REDIS_UNAVAILABLE = Counter(
    "gateway_redis_unavailable_total",
    "Operations that found Redis unavailable, by feature and what the gateway did instead.",
    ["feature", "outcome"],
)

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]]
_async_clients = weakref.WeakKeyDictionary()
_sync_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
_embedded_server = fakeredis.FakeServer()


def _options() -> dict:
    timeout = float(getattr(settings, "GATEWAY_REDIS_TIMEOUT_SECONDS", 1.0))
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "decode_responses": True}


def get_redis_url() -> str:
    return getattr(settings, "REDIS_URL", "") or ""


def get_redis() -> redis.asyncio.Redis | None:
    """The asyncio client for the running loop, or None without REDIS_URL."""
    url = get_redis_url()
    if not url:
        return None
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        client = clients.get(url)
        if client is None:
            client = redis.asyncio.Redis.from_url(url, **_options())
            clients[url] = client
    return client


def get_embedded_redis() -> redis.asyncio.Redis:
    """The running loop's client of this process's embedded fakeredis (never fails)."""
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        client = clients.get("embedded")
        if client is None:
            client = fakeredis.FakeAsyncRedis(server=_embedded_server, decode_responses=True)
            clients["embedded"] = client
    return client


def clear_embedded_redis() -> None:
    """Empty the embedded store (tests, or a fresh start)."""
    fakeredis.FakeRedis(server=_embedded_server).flushall()


def get_sync_redis() -> redis.Redis | None:
    """The blocking client, for Celery tasks and other code off the event loop."""
    url = get_redis_url()
    if not url:
        return None
    with _lock:
        client = _sync_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, **_options())
            _sync_clients[url] = client
    return client


async def close_redis() -> None:
    """Close the running loop's clients (ASGI shutdown, the end of an async test)."""
    with _lock:
        clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def count_unavailable(feature: str, outcome: str) -> None:
    REDIS_UNAVAILABLE.labels(feature=feature, outcome=outcome).inc()
