"""How long the executor waits, and when it gives up on a candidate: retries with jittered
exponential backoff (a provider's Retry-After honoured), the first-byte timeout that moves on to
the next candidate, and the idle timeout that ends a stalled stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from llm.routing import Candidate
from llm.types import ErrorKind, ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_candidate: int = 2
    max_attempts: int = 5  # over all candidates
    base_backoff: float = 0.25  # seconds; doubles per retry, then jittered into [50%, 100%]
    max_backoff: float = 2.0  # a longer wait (or Retry-After) moves on to the next candidate
    # Seconds a candidate may take to send its first event (streams) or its answer (otherwise)
    # before the next candidate is tried; None: only the deadline bounds it.
    first_byte_timeout: float | None = None
    # Seconds a started stream may stay silent before it is ended with a terminal error.
    idle_timeout: float | None = None


DEFAULT_POLICY = RetryPolicy()


def backoff(policy: RetryPolicy, retry: int, error: ProviderError, jitter: float) -> float | None:
    """Seconds to wait before retrying the same candidate, or None to move on at once."""
    exponential = policy.base_backoff * (2**retry) * (0.5 + jitter / 2)
    delay = max(exponential, error.retry_after or 0.0)
    return None if delay > policy.max_backoff else delay


async def first_byte(answer: Awaitable[T], candidate: Candidate, timeout: float | None) -> T:
    """The candidate's first event (or whole answer), or a retryable timeout naming it."""
    try:
        async with asyncio.timeout(timeout):
            return await answer
    except TimeoutError:
        raise ProviderError(
            ErrorKind.TIMEOUT,
            f"{candidate.provider.name}: nothing received within {timeout:g}s (first-byte timeout)",
            provider=candidate.provider.id,
        ) from None


class IdleWatch:
    """Ends a wait on a stream that stays silent for `seconds`: the waiting task is cancelled
    there, and `expired()` tells that cancellation from any other.

    One timer per stream, re-armed only when it fires early, instead of a timeout armed and
    disarmed around every event (that was 4 % of a stream worker's CPU). Only time spent in a
    wait counts: while the task is away writing to its client, the watch never cancels it."""

    __slots__ = ("_seconds", "_loop", "_task", "_since", "_cancelling", "_timer", "_fired")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._since: float | None = None  # when the current wait began; None between waits
        self._cancelling = 0
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def waiting(self) -> None:
        """The task reading the stream is about to wait on it (one task reads a stream: the
        first wait names it, and asyncio.current_task() is not looked up again per event)."""
        if self._seconds is None:
            return
        if self._task is None:
            self._task = asyncio.current_task()
        self._cancelling = self._task.cancelling()
        self._since = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._since + self._seconds, self._check)

    def done_waiting(self) -> None:
        self._since = None
        if self._fired:  # the wait ended anyway: take the watch's cancellation back
            self._fired = False
            self._task.uncancel()

    def expired(self) -> bool:
        """Whether the wait's cancellation is the watch's own (then it is taken back), as
        asyncio.timeout tells its own: one from elsewhere as well stays a cancellation."""
        self._since = None
        if not self._fired:
            return False
        self._fired = False
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._since is None:
            return  # between waits: armed again by the next one
        due = self._since + self._seconds
        if due > self._loop.time():
            self._timer = self._loop.call_at(due, self._check)
            return
        self._fired = True
        self._task.cancel()


def stalled(candidate: Candidate, timeout: float | None) -> ProviderError:
    return ProviderError(
        ErrorKind.TIMEOUT,
        f"{candidate.provider.name}: the stream stalled (nothing for {timeout:g}s)",
        provider=candidate.provider.id,
    )
