"""Per-provider circuit breaker, shared by every process through Redis when one is given.

closed --(N consecutive failures, or error rate >= threshold over a window)--> open
open --(cool-down elapsed)--> half-open: exactly one caller wins the probe (SET NX)
half-open --success--> closed;  half-open --failure--> open again with a fresh cool-down

Only retryable upstream failures (rate limits, overload, timeouts, refused connections) count:
a 400 is the caller's fault and says nothing about the provider's health.
State is a few keys per provider, each changed by one atomic command:
  <prefix><provider>:open           opened-at time, present while open or half-open
  <prefix><provider>:streak         consecutive failures (INCR; deleted on success)
  <prefix><provider>:w:<n>          calls/failures in fixed window n (HINCRBYFLOAT)
  <prefix><provider>:probe:<opened> the half-open probe ticket (SET NX with a TTL)
  <prefix><provider>:backoff        until when the provider asked us to wait (its Retry-After)

Apart from the circuit, a provider that answers 429 (or 503) with Retry-After is backed off: no
process calls it again before that time (bounded by MAX_BACKOFF_SECONDS); callers fail over.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llm.sharedstate import Clock, SharedState

MAX_BACKOFF_SECONDS = 300.0  # an upstream's Retry-After is untrusted input: bounded


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitPolicy:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    error_rate_threshold: float = 0.5  # failure share in the window that opens it...
    min_calls: int = 20  # ...once the window has at least this many calls
    window: float = 60.0  # seconds
    cooldown: float = 30.0  # seconds open before a probe is let through
    probe_timeout: float = 30.0  # a probe that never reports back frees its ticket after this
    state_ttl: float = 3600.0  # how long an open circuit is remembered at most
    # Batching for the hot path (0: every call reads and writes the shared state). With a
    # positive interval, the open-circuit list is re-read at most this often and successes are
    # added up and written at most this often; failures are always written at once. A provider
    # found closed and not backing off is trusted to stay so for this long (it is re-read after,
    # or at once when this process sees it fail).
    sync_interval: float = 0.0


class CircuitBreaker:
    def __init__(
        self,
        redis: Any = None,
        *,
        state: SharedState | None = None,
        clock: Clock = time.time,
        policy: CircuitPolicy | None = None,
        prefix: str = "gw:cb:",
    ) -> None:
        self.store = state or SharedState(redis, clock=clock)
        self.policy = policy or CircuitPolicy()
        self._clock = clock
        self._prefix = prefix
        self._open_cache: tuple[float, frozenset[str], frozenset[str]] | None = None
        self._clear_at: dict[str, float] = {}  # provider -> when gate() last read it clear
        self._successes: dict[str, int] = {}
        self._successes_at = -float("inf")

    def _key(self, provider: str, *parts: str) -> str:
        return ":".join([f"{self._prefix}{provider}", *parts])

    def _state_of(self, opened_at: str | None) -> CircuitState:
        if opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - float(opened_at) < self.policy.cooldown:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    async def states(self, providers: Iterable[str]) -> dict[str, CircuitState]:
        ids = list(providers)
        values = await self.store.get_many([self._key(p, "open") for p in ids])
        return {p: self._state_of(v) for p, v in zip(ids, values, strict=True)}

    async def state(self, provider: str) -> CircuitState:
        return (await self.states([provider]))[provider]

    async def open_providers(self, providers: Iterable[str]) -> frozenset[str]:
        """Providers still cooling down; half-open ones are not included (they may be probed)."""
        ids = frozenset(providers)
        cached = self._open_cache
        if cached and cached[1] == ids and self._clock() - cached[0] < self.policy.sync_interval:
            return cached[2]
        states = await self.states(ids)
        found = frozenset(p for p, s in states.items() if s is CircuitState.OPEN)
        self._open_cache = (self._clock(), ids, found)
        return found

    def known_open(self) -> frozenset[str]:
        """The open circuits as last read (no I/O): for metrics, not for decisions."""
        return self._open_cache[2] if self._open_cache else frozenset()

    async def gate(self, provider: str) -> tuple[str, float] | None:
        """None if a call may go to provider now, else why not and for how many seconds:
        ("backing_off", seconds left of its Retry-After) or ("circuit_open", cool-down left)."""
        read_at = self._clear_at.get(provider)
        if read_at is not None and self._clock() - read_at < self.policy.sync_interval:
            return None
        opened_at, until = await self.store.get_many(
            [self._key(provider, "open"), self._key(provider, "backoff")]
        )
        left = float(until) - self._clock() if until is not None else 0.0
        if left > 0:
            return "backing_off", left
        state = self._state_of(opened_at)
        if state is CircuitState.CLOSED:
            if self.policy.sync_interval > 0:
                self._clear_at[provider] = self._clock()
            return None
        cooldown_left = self.policy.cooldown - (self._clock() - float(opened_at))
        if state is CircuitState.OPEN:
            return "circuit_open", cooldown_left
        ticket = self._key(provider, "probe", str(opened_at))
        if await self.store.set(ticket, "1", self.policy.probe_timeout, only_new=True):
            return None
        return "circuit_open", self.policy.probe_timeout

    async def back_off(self, provider: str, seconds: float) -> None:
        """The provider asked for a pause (Retry-After): no process calls it before then."""
        seconds = min(max(seconds, 0.0), MAX_BACKOFF_SECONDS)
        self._clear_at.pop(provider, None)
        if seconds > 0:
            until = repr(self._clock() + seconds)
            await self.store.set(self._key(provider, "backoff"), until, seconds)

    async def record_success(self, provider: str) -> None:
        # Any success proves the provider answers: close (this is also how a probe closes it).
        self._successes[provider] = self._successes.get(provider, 0) + 1
        if self._clock() - self._successes_at >= self.policy.sync_interval:
            await self.flush_successes()

    async def flush_successes(self) -> None:
        successes, self._successes = self._successes, {}
        self._successes_at = self._clock()
        for provider, count in successes.items():
            await self.store.delete(self._key(provider, "open"), self._key(provider, "streak"))
            await self._count(provider, failed=False, calls=count)

    async def record_failure(self, provider: str) -> None:
        self._clear_at.pop(provider, None)
        (opened_at,) = await self.store.get_many([self._key(provider, "open")])
        state = self._state_of(opened_at)
        streak = await self.store.incr(self._key(provider, "streak"), self.policy.state_ttl)
        calls, failures = await self._count(provider, failed=True)
        if state is CircuitState.OPEN:
            return  # already open; keep the original cool-down
        tripped = streak >= self.policy.failure_threshold or (
            calls >= self.policy.min_calls and failures / calls >= self.policy.error_rate_threshold
        )
        if state is CircuitState.HALF_OPEN or tripped:
            await self.store.set(
                self._key(provider, "open"), repr(self._clock()), self.policy.state_ttl
            )
            self._open_cache = None  # this process sees its own trip at once

    async def _count(self, provider: str, *, failed: bool, calls: int = 1) -> tuple[float, float]:
        window = int(self._clock() // self.policy.window)
        counts = await self.store.hincr(
            self._key(provider, "w", str(window)),
            {"calls": float(calls), "failures": 1.0 if failed else 0.0},
            self.policy.window * 2,
        )
        return counts["calls"], counts["failures"]
