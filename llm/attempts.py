"""Walking a plan's candidates: one attempt after another until one answers, each recorded in
RouteInfo, the health store and the circuit breaker, the whole walk inside one deadline.

Retryable errors retry the same candidate (RetryPolicy's backoff), then move to the next;
non-retryable ones raise UpstreamRejectedError at once; the deadline raises GatewayTimeoutError
naming the provider being waited on; a walk with nothing left raises AllProvidersFailedError (or
ProvidersBackingOffError when no candidate could be called at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from llm import params
from llm.errors import (
    AllProvidersFailedError,
    GatewayTimeoutError,
    ProvidersBackingOffError,
    UpstreamRejectedError,
)
from llm.retry_policy import RetryPolicy, backoff
from llm.route_info import Attempt, RouteInfo
from llm.routing import Candidate, RoutePlan
from llm.runtime import Runtime
from llm.tokens import estimate_messages_tokens
from llm.types import ChatRequest, ErrorKind, ProviderError, Usage

T = TypeVar("T")


def upstream_request(
    candidate: Candidate, request: ChatRequest, info: RouteInfo, *, stream: bool
) -> ChatRequest:
    """The request as this candidate receives it: its parameter rules applied, its model id."""
    decision = params.decide(candidate.model.params, request, candidate.model.id)
    if decision.dropped:
        info.dropped[candidate.model.id] = decision.dropped_text()
    return params.apply(decision, request, model=candidate.model.upstream, stream=stream)


def prompt_estimate(request: ChatRequest) -> Usage:
    return Usage(
        input_tokens=estimate_messages_tokens(request.messages),
        estimated_parts=frozenset({"input"}),
    )


async def walk(
    plan: RoutePlan,
    info: RouteInfo,
    call: Callable[[Candidate], Awaitable[T]],
    *,
    deadline: float,
    rt: Runtime,
    policy: RetryPolicy,
    record_success: bool = True,
    keep_late: bool = False,
) -> tuple[T, Candidate]:
    loop_deadline = rt.monotonic() + deadline
    attempts = 0
    waits: list[float] = []  # seconds until each skipped candidate may be called again
    current: tuple[Candidate, float] | None = None
    try:
        async with asyncio.timeout(deadline):
            for position, candidate in enumerate(plan.candidates, start=1):
                provider = candidate.provider.id
                # If every circuit is open, still try the last candidate rather than none; a
                # provider that asked us to wait (Retry-After) is never called before then.
                must_try = position == len(plan.candidates) and attempts == 0
                closed = await rt.breaker.gate(provider)
                if closed is not None and (closed[0] == "backing_off" or not must_try):
                    info.attempts.append(_attempt(candidate, error_kind=closed[0]))
                    waits.append(closed[1])
                    continue
                for retry in range(policy.attempts_per_candidate):
                    if attempts >= policy.max_attempts:
                        break
                    attempts += 1
                    current = (candidate, rt.monotonic())
                    try:
                        if keep_late:
                            attempt = asyncio.ensure_future(call(candidate))
                            attempt.add_done_callback(_retrieve)
                            info.pending = attempt
                            value = await asyncio.shield(attempt)
                            info.pending = None
                        else:
                            value = await call(candidate)
                    except ProviderError as error:
                        info.pending = info.in_flight = None
                        elapsed = _elapsed_ms(rt, current[1])
                        current = None
                        info.upstream_ms += elapsed
                        info.attempts.append(_attempt(candidate, error=error, elapsed_ms=elapsed))
                        await record_health(rt, candidate, error, latency_ms=elapsed)
                        if error.retry_after and error.kind is ErrorKind.RATE_LIMITED:
                            await rt.breaker.back_off(provider, error.retry_after)
                        if not error.retryable:
                            raise UpstreamRejectedError(error, route=info) from error
                        delay = backoff(policy, retry, error, rt.jitter())
                        last_try = retry + 1 >= policy.attempts_per_candidate
                        if delay is None or last_try or rt.monotonic() + delay >= loop_deadline:
                            break  # next candidate
                        await rt.sleep(delay)
                        continue
                    elapsed = _elapsed_ms(rt, current[1])
                    current = None
                    info.in_flight = None
                    info.upstream_ms += elapsed
                    info.attempts.append(_attempt(candidate, elapsed_ms=elapsed))
                    info.served_provider, info.served_model = provider, candidate.model.id
                    info.upstream_model = candidate.model.upstream
                    if record_success:
                        await record_health(rt, candidate, None, latency_ms=elapsed)
                    else:
                        await rt.breaker.record_success(provider)
                    return value, candidate
    except TimeoutError:
        last = current[0] if current else None
        if current is not None:
            elapsed = _elapsed_ms(rt, current[1])
            info.upstream_ms += elapsed
            info.attempts.append(
                _attempt(
                    current[0], error_kind=ErrorKind.TIMEOUT, message="deadline", elapsed_ms=elapsed
                )
            )
        where = f" waiting for {last.provider.id}" if last else ""
        raise GatewayTimeoutError(
            f"no answer within {deadline:g}s{where}",
            last_provider=last.provider.id if last else None,
            route=info,
        ) from None
    if attempts == 0 and waits:
        raise ProvidersBackingOffError(
            "every candidate is cooling down or asked us to wait; retry later",
            retry_after=min(waits),
            route=info,
        )
    tried = ", ".join(dict.fromkeys(info.providers_tried())) or "none (all circuits open)"
    last = next((a.message for a in reversed(info.attempts) if a.message), "")
    raise AllProvidersFailedError(
        f"every candidate failed; providers tried: {tried}" + (f"; last: {last}" if last else ""),
        route=info,
    )


async def record_health(
    rt: Runtime,
    candidate: Candidate,
    error: ProviderError | None,
    *,
    latency_ms: float | None,
    ttft_ms: float | None = None,
) -> None:
    """Health and breaker bookkeeping. A 400/404 is the caller's request, not the provider's
    health: it counts as an answer. Auth failures count against health but not the breaker."""
    provider, model = candidate.provider.id, candidate.model.id
    answered = error is None or error.kind in (ErrorKind.BAD_REQUEST, ErrorKind.NOT_FOUND)
    # One after the other, not gathered: both count in memory and reach the shared store only
    # every few seconds (which, when down, is skipped at once after its first timeout), and
    # gathering them cost two tasks per request.
    await rt.health.record(
        provider,
        model,
        ok=answered,
        latency_ms=latency_ms if error is None else None,
        ttft_ms=ttft_ms,
        error_kind=None if error is None else error.kind,
    )
    if answered:
        await rt.breaker.record_success(provider)
    elif error is not None and error.retryable:
        await rt.breaker.record_failure(provider)


def _attempt(
    candidate: Candidate,
    *,
    error: ProviderError | None = None,
    error_kind: str | None = None,
    message: str = "",
    elapsed_ms: float = 0.0,
) -> Attempt:
    return Attempt(
        provider=candidate.provider.id,
        model=candidate.model.id,
        upstream_model=candidate.model.upstream,
        error_kind=str(error.kind) if error is not None else error_kind,
        status=error.status if error is not None else None,
        message=error.message if error is not None else message,
        elapsed_ms=elapsed_ms,
    )


def _elapsed_ms(rt: Runtime, since: float) -> float:
    return (rt.monotonic() - since) * 1000


def _retrieve(attempt: asyncio.Future) -> None:
    # A late attempt nobody waits for any more must not log "exception never retrieved".
    if not attempt.cancelled():
        attempt.exception()
