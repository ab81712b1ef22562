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


def stalled(candidate: Candidate, timeout: float | None) -> ProviderError:
    return ProviderError(
        ErrorKind.TIMEOUT,
        f"{candidate.provider.name}: the stream stalled (nothing for {timeout:g}s)",
        provider=candidate.provider.id,
    )
