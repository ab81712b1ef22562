"""What a process shares, set up once, in this order, before it serves anything.

Nothing is created on first use: a getter called before start-up raises. There are two phases,
because some pieces belong to the event loop that serves:

1. `set_up_process()`, from GatewayConfig.ready in every process (web, Celery, manage.py, tests):
   the Redis clients (llm/redis_clients.py), the model catalogue, the cap on an upstream answer's
   size, and a routing runtime whose health and circuit state live in this process's embedded
   store (Celery tasks and management commands need nothing shared).
2. `start_serving()`, at the ASGI lifespan's start-up on the server's loop: the shared HTTP
   client, the runtime that shares health and circuit state through Redis, the usage-record
   flusher, and with a shared Redis this process's heartbeat and its listener for key
   revocations. `stop_serving()` undoes them at a graceful stop, after settling pending calls
   and flushing usage records.
"""

from __future__ import annotations

import asyncio
import contextlib

from django.conf import settings

from analytics.recording import aflush_pending_usage, start_usage_flusher, stop_usage_flusher
from billing import inflight
from llm.api.auth import listen_for_revocations
from llm.api.settlement import drain_background
from llm.catalog import load_catalog, set_catalog
from llm.circuit import CircuitPolicy
from llm.health import HealthPolicy
from llm.http import build_client, get_client, set_client
from llm.providers import limits
from llm.redis_clients import configure, get_redis, uses_real_redis
from llm.runtime import configure_runtime

# A serving process writes health counts and circuit successes to Redis at most once a second.
SERVING_HEALTH = HealthPolicy(flush_interval=1.0)
SERVING_CIRCUIT = CircuitPolicy(sync_interval=1.0)

_tasks: list[asyncio.Task] = []


def set_up_process() -> None:
    configure(
        settings.REDIS_URL,
        settings.GATEWAY_REDIS_TIMEOUT_SECONDS,
        settings.GATEWAY_REDIS_MAX_CONNECTIONS,
    )
    set_catalog(load_catalog())
    limits.set_max_upstream_bytes(settings.GATEWAY_MAX_UPSTREAM_BYTES)
    configure_runtime(None)


async def start_serving() -> None:
    set_client(upstream_client())
    configure_runtime(get_redis(), health_policy=SERVING_HEALTH, circuit_policy=SERVING_CIRCUIT)
    start_usage_flusher()
    loop = asyncio.get_running_loop()
    # Only a shared Redis has other processes to hear from and outlives this one. The embedded
    # store has neither: revocations reach this process's cache directly, and nothing is swept.
    if uses_real_redis():
        _tasks.append(loop.create_task(listen_for_revocations(), name="revocation-listener"))
        _tasks.append(loop.create_task(inflight.keep_alive_forever(), name="heartbeat"))


def upstream_client():
    """The shared upstream client: one connection per open stream, up to the setting's cap."""
    return build_client(max_connections=settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS)


async def stop_serving() -> None:
    # Stop listening first; keep beating until every pending call has settled, so the sweeper
    # never takes this process for dead while it still settles.
    heartbeat = [task for task in _tasks if task.get_name() == "heartbeat"]
    await _cancel([task for task in _tasks if task not in heartbeat])
    await drain_background()
    await inflight.drain()  # holds given back for callers that went away
    await stop_usage_flusher()
    await aflush_pending_usage()
    await _cancel(heartbeat)
    _tasks.clear()
    await get_client().aclose()


async def _cancel(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
