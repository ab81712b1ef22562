"""The one seam to Redis: every feature that keeps state in Redis gets its client here.

`configure(url, timeout, max_connections)` is called once at start-up (gateway_project/startup.py,
from REDIS_URL, GATEWAY_REDIS_TIMEOUT_SECONDS and GATEWAY_REDIS_MAX_CONNECTIONS). With a URL,
`get_redis()` and `get_sync_redis()` are clients of that Redis, shared by every gateway process.
Without one they are clients of this process's embedded store, an in-process fakeredis (with
lupa, so the same Lua scripts run): the same commands, the same code path, and nothing needs to
be running.

`get_embedded_redis()` is always the embedded store, whatever the URL: what a feature falls back
on while a real Redis is unavailable (admission's per-process share of each rate limit, health
and circuit state, usage records that could be written nowhere else).

An asyncio client is bound to the event loop it first connects on, so the async getters keep
one client per running loop (the ASGI server has one; tests and `async_to_sync` make others).
Timeouts are short: a Redis that does not answer must degrade a feature, not stall requests.
A loop's client holds at most `max_connections`; a burst of callers beyond them (thousands of
streams opening or settling at once) waits for a free one, up to the timeout, rather than being
refused at once as redis-py's default pool (100 connections) refuses them.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import fakeredis
import hiredis
import redis
import redis.asyncio
from prometheus_client import Counter
from redis.connection import HiredisRespSerializer

# What a failing Redis raises: its own errors, and socket errors that escape them.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)

REDIS_UNAVAILABLE = Counter(
    "gateway_redis_unavailable_total",
    "Operations that found Redis unavailable, by feature and what the gateway did instead.",
    ["feature", "outcome"],
)

EMBEDDED = "embedded"  # the client key of the embedded store

_url = ""
_timeout = 1.0
_max_connections = 100
_embedded_server = fakeredis.FakeServer()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]]
_async_clients = weakref.WeakKeyDictionary()
_sync_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def configure(url: str, timeout: float = 1.0, max_connections: int = 100) -> None:
    """Point the clients at the Redis at `url`, or at the embedded store when it is empty.

    Clients are kept per URL, so configuring again (tests) never strands a client in use."""
    global _url, _timeout, _max_connections
    with _lock:
        _url, _timeout, _max_connections = url or "", float(timeout), int(max_connections)


def uses_real_redis() -> bool:
    """Whether the clients reach a Redis server (shared by processes) or the embedded store."""
    return bool(_url)


def get_redis() -> redis.asyncio.Redis:
    """The running loop's client: the configured Redis, or the embedded store without one."""
    return _async_client(_url or EMBEDDED)


def get_embedded_redis() -> redis.asyncio.Redis:
    """The running loop's client of this process's embedded store (never fails, never shared)."""
    return _async_client(EMBEDDED)


def get_sync_redis() -> redis.Redis:
    """The blocking client, for Celery tasks and other code off the event loop."""
    return _sync_client(_url or EMBEDDED)


def get_embedded_sync_redis() -> redis.Redis:
    """The blocking client of this process's embedded store."""
    return _sync_client(EMBEDDED)


def clear_embedded_redis() -> None:
    """Empty the embedded store (tests, or a fresh start)."""
    get_embedded_sync_redis().flushall()


async def close_redis() -> None:
    """Close the running loop's clients (ASGI shutdown, the end of an async test)."""
    with _lock:
        clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


def count_unavailable(feature: str, outcome: str) -> None:
    REDIS_UNAVAILABLE.labels(feature=feature, outcome=outcome).inc()


class HiredisPackedConnection(redis.asyncio.Connection):
    """redis-py's asyncio connection packs commands in Python (its blocking one uses hiredis):
    on the request path, with a hundred arguments per call, that was a tenth of its CPU."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args):
        name = args[0]
        if " " in name if isinstance(name, str) else b" " in name:
            return self._packer.pack(*args)  # "SCRIPT LOAD" and the like: split by the library
        try:
            # What the library's packer ends in, without its pass over every argument (which
            # only turns a bytearray or memoryview into bytes): 12 -> 4 µs for an admission.
            return [hiredis.pack_command(args)]
        except TypeError:
            return self._packer.pack(*args)  # converts what it can, else raises DataError

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        """With a socket timeout, redis-py sends every command under asyncio.wait_for, which on
        Python 3.11 runs the write as a task of its own. A write the socket takes at once cannot
        time out, so it is made here directly; only one the socket could not take whole (its
        buffer full: Redis is not reading) or on a connection that is going is then waited for
        the library's way, under the timeout and with its errors."""
        if not (self.is_connected and self.socket_timeout and isinstance(command, list)):
            return await super().send_packed_command(command, check_health)
        if check_health:
            await self.check_health()
        transport = self._writer.transport
        self._writer.writelines(command)
        if transport.get_write_buffer_size() or transport.is_closing():
            await super().send_packed_command([], check_health=False)  # sends nothing, drains


def _async_client(name: str) -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    # Read without the lock: every request asks, and a loop's clients only change under the
    # lock (made once, dropped by close_redis), each change one atomic dict operation.
    client = _async_clients.get(loop, {}).get(name)
    if client is not None:
        return client
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        client = clients.get(name)
        if client is None:
            if name == EMBEDDED:
                # Its "connections" are in-process, but each idle one is kept: capped as well.
                client = fakeredis.FakeAsyncRedis(
                    server=_embedded_server,
                    decode_responses=True,
                    connection_pool_class=redis.asyncio.BlockingConnectionPool,
                    max_connections=_max_connections,
                )
            else:
                options = _options()
                if name.startswith("redis://"):  # rediss:// and unix:// keep their own classes
                    options["connection_class"] = HiredisPackedConnection
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    name, max_connections=_max_connections, timeout=_timeout, **options
                )
                client = redis.asyncio.Redis.from_pool(pool)
            clients[name] = client
    return client


def _sync_client(name: str) -> redis.Redis:
    with _lock:
        client = _sync_clients.get(name)
        if client is None:
            if name == EMBEDDED:
                client = fakeredis.FakeRedis(server=_embedded_server, decode_responses=True)
            else:
                client = redis.Redis.from_url(name, **_options())
            _sync_clients[name] = client
    return client


def _options() -> dict:
    return {
        "socket_timeout": _timeout,
        "socket_connect_timeout": _timeout,
        "decode_responses": True,
    }
