"""The process-wide pieces the executor needs, bundled so tests can swap any of them.

configure_runtime(redis) at start-up (gateway_project/startup.py) shares health and circuit state
through Redis; with redis=None both live in this process's embedded store (llm/redis_clients.py).
plan_route() is the one call the API makes to route: it refreshes the health snapshot, asks the
breaker which circuits are open, and resolves.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from llm.catalog import Catalog, get_catalog
from llm.circuit import CircuitBreaker, CircuitPolicy
from llm.health import HealthPolicy, HealthStore
from llm.http import get_client
from llm.routing import Allowed, RoutePlan, resolve
from llm.sharedstate import SharedState
from llm.types import ChatRequest


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    health: HealthStore = field(default_factory=HealthStore)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    client: Callable[[], httpx.AsyncClient] = get_client
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic
    utcnow: Callable[[], datetime] = _utcnow
    jitter: Callable[[], float] = random.random  # uniform [0, 1): spreads retries apart


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime configured at start-up (gateway_project/startup.py)."""
    if _runtime is None:
        raise RuntimeError("No runtime is configured: the process was not started up.")
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def configure_runtime(
    redis: Any = None,
    *,
    clock: Callable[[], float] = time.time,
    health_policy: HealthPolicy | None = None,
    circuit_policy: CircuitPolicy | None = None,
    **seams: Any,
) -> Runtime:
    """Build and install the process runtime; redis is a redis.asyncio client or None."""
    state = SharedState(redis, clock=clock)
    runtime = Runtime(
        health=HealthStore(state=state, clock=clock, policy=health_policy),
        breaker=CircuitBreaker(state=state, clock=clock, policy=circuit_policy),
        **seams,
    )
    set_runtime(runtime)
    return runtime


async def plan_route(
    name: str,
    *,
    needs: Iterable[str] = ("chat",),
    allowed: Allowed = None,
    catalog: Catalog | None = None,
    runtime: Runtime | None = None,
    request: ChatRequest | None = None,
) -> RoutePlan:
    rt = runtime or get_runtime()
    cat = catalog or get_catalog()
    await rt.health.refresh()
    open_circuits: Collection[str] = await rt.breaker.open_providers(sorted(cat.configured))
    return resolve(
        cat,
        name,
        needs=needs,
        allowed=allowed,
        health=rt.health,
        open_circuits=open_circuits,
        now=rt.utcnow(),
        request=request,
    )
