"""The registry of scenarios and what they share: the stack, the tenants, timing helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from load import Outcome
from report import Row
from stack import Stack

MAX_SECONDS = 90  # the bound per scenario
MAX_CLIENTS = 50


@dataclass
class Context:
    stack: Stack
    client: httpx.AsyncClient

    @property
    def pg_url(self) -> str:
        return self.stack.postgres.url()

    def key(self, tenant: str) -> str:
        return self.stack.tenants[tenant]["key"]

    def url(self, index: int) -> str:
        return self.stack.gateway_url(index)


@dataclass
class Scenario:
    name: str
    group: str
    run: Callable[[Context], Awaitable[Row]]
    ci: bool


SCENARIOS: list[Scenario] = []
TENANTS: dict[str, dict] = {}


def scenario(name: str, group: str, ci: bool = False, tenants: dict | None = None):
    """Register `async def f(ctx) -> Row`; `tenants` adds what it needs to the tenant spec."""

    def register(function):
        SCENARIOS.append(Scenario(name, group, function, ci))
        TENANTS.update(tenants or {})
        return function

    return register


async def after(delay: float, action: Callable[[], object]) -> float:
    """Run a blocking action in a thread after `delay` seconds; returns when it was done."""
    await asyncio.sleep(delay)
    await asyncio.to_thread(action)
    return time.monotonic()


def recovery_seconds(outcomes: list[Outcome], fault_end: float) -> float | None:
    """From the end of the fault to the first request of the unbroken run of 2xx/429 answers
    that closes the scenario; None when the last request still failed."""
    later = sorted((o for o in outcomes if o.started >= fault_end), key=lambda o: o.started)
    first_good = None
    for outcome in later:
        if outcome.status in (200, 429) and not outcome.error:
            first_good = first_good or outcome
        else:
            first_good = None
    return None if first_good is None else round(max(first_good.started - fault_end, 0.0), 1)


def between(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    return [o for o in outcomes if start <= o.started < end]


def count(outcomes: list[Outcome], predicate: Callable[[Outcome], bool]) -> int:
    return sum(1 for o in outcomes if predicate(o))


def fives(outcomes: list[Outcome]) -> int:
    return count(outcomes, lambda o: o.is_5xx)
