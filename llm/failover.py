"""The executor the public API calls: walk a RoutePlan's candidates until one answers.

- Retryable upstream errors (429, 5xx/overloaded, timeouts, refused connections) move on: first a
  bounded number of retries on the same candidate with jittered exponential backoff (a provider's
  Retry-After is honoured; one longer than max_backoff skips straight to the next candidate),
  then the next candidate; the total number of attempts is bounded too.
- Non-retryable errors (400, 401, 404) raise UpstreamRejectedError at once: another provider would
  refuse the same request, or our configuration is wrong, and retrying would only cost money.
- The whole call runs inside one deadline (seconds); when it passes, GatewayTimeoutError names the
  provider that was being waited on. For streams the deadline covers reaching the first event.
- Every attempt is recorded in RouteInfo, the health store and the circuit breaker.
- Each attempt chooses its price row once, when it is dispatched; the attempt that serves turns
  its reported usage into a Charge (llm/outcome.py: bounded to what the request could produce,
  priced once). Streamed and non-streamed calls alike.
- A non-streamed attempt that is still running when the deadline passes (or the caller goes
  away) is not abandoned: RouteInfo.pending keeps it, so the caller can wait a little longer for
  the usage the provider will bill.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llm import params
from llm.catalog import ModelEntry, PriceRow
from llm.errors import (
    AllProvidersFailedError,
    GatewayTimeoutError,
    ProvidersBackingOffError,
    UpstreamRejectedError,
)
from llm.outcome import Charge, UsageBound, charge_for
from llm.providers import get_dialect
from llm.routing import Candidate, RoutePlan
from llm.runtime import Runtime, get_runtime
from llm.tokens import estimate_inputs_usage, estimate_messages_tokens, fill_unreported
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ErrorKind,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)

T = TypeVar("T")
_PRODUCED = frozenset({StreamEventType.DELTA, StreamEventType.REASONING, StreamEventType.TOOL_CALL})


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


# Attempts skipped without a call: the provider's circuit is open, or it asked us to wait.
SKIPPED = frozenset({"circuit_open", "backing_off"})


DEFAULT_POLICY = RetryPolicy()


@dataclass
class Attempt:
    provider: str
    model: str  # gateway model id
    upstream_model: str
    error_kind: str | None = None  # None: it answered; one of SKIPPED: skipped without a call
    status: int | None = None
    message: str = ""
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class InFlight:
    """The attempt being waited on: what it would bill if it never answers (its prompt,
    estimated), at the price row chosen when it was dispatched."""

    model: ModelEntry
    price: PriceRow
    bound: UsageBound
    estimate: Usage
    request: ChatRequest | None = None

    def estimated_charge(self) -> Charge:
        return charge_for(self.model, self.price, self.estimate, self.bound, self.request)


@dataclass
class RouteInfo:
    requested: str
    alias: str | None
    reason: str
    candidates: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    served_provider: str | None = None
    served_model: str | None = None
    upstream_model: str | None = None
    upstream_ms: float = 0.0  # time spent waiting on upstreams, all attempts, no backoff
    ttft_ms: float | None = None  # streams: first event of the attempt that served
    dropped: dict[str, str] = field(default_factory=dict)  # model id -> dropped parameters
    charge: Charge | None = None  # the serving attempt's, once its usage is known
    # A non-streamed attempt still running when the deadline passed or the caller left; it
    # resolves to (result, Charge) if the provider answers after all.
    pending: asyncio.Future | None = None
    in_flight: InFlight | None = None  # the attempt being waited on, if any

    @classmethod
    def for_plan(cls, plan: RoutePlan) -> RouteInfo:
        return cls(plan.requested, plan.alias, plan.reason, plan.candidate_ids())

    def providers_tried(self) -> list[str]:
        return [a.provider for a in self.attempts if a.error_kind not in SKIPPED]

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Gateway-Route-Alias": self.alias or "",
            "X-Gateway-Route-Reason": self.reason.encode("ascii", "replace").decode(),
            "X-Gateway-Candidates": ", ".join(self.candidates),
            "X-Gateway-Attempts": str(len(self.providers_tried())),
        }
        if self.served_provider:
            headers["X-Gateway-Provider"] = self.served_provider
            headers["X-Gateway-Model"] = self.served_model or ""
            dropped = self.dropped.get(self.served_model or "")
            if dropped:
                headers["X-Gateway-Params-Dropped"] = dropped.encode("ascii", "replace").decode()
        return headers


def upstream_request(
    candidate: Candidate, request: ChatRequest, info: RouteInfo, *, stream: bool
) -> ChatRequest:
    """The request as this candidate receives it: its parameter rules applied, its model id."""
    decision = params.decide(candidate.model.params, request, candidate.model.id)
    if decision.dropped:
        info.dropped[candidate.model.id] = decision.dropped_text()
    adapted = params.apply(decision, request)
    return dataclasses.replace(adapted, model=candidate.model.upstream, stream=stream)


async def complete(
    plan: RoutePlan,
    request: ChatRequest,
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    route: RouteInfo | None = None,
) -> tuple[ChatResult, RouteInfo]:
    """One chat completion with failover; deadline is the whole call's budget in seconds.
    Pass route to watch the attempts as they happen (it is filled in and returned)."""
    rt = runtime or get_runtime()
    info = route or RouteInfo.for_plan(plan)

    async def call(c: Candidate) -> tuple[ChatResult, Charge]:
        price = c.model.price_at(rt.utcnow())
        sent = upstream_request(c, request, info, stream=False)
        bound = UsageBound.for_chat(c.model, sent)
        info.in_flight = InFlight(c.model, price, bound, prompt_estimate(sent), sent)
        answer = get_dialect(c.provider.dialect).chat(rt.client(), c.provider, sent)
        result = await _first_byte(answer, c, policy.first_byte_timeout)
        return result, charge_for(c.model, price, result.usage, bound, sent)

    (result, charge), _ = await _walk(
        plan, info, call, deadline=deadline, rt=rt, policy=policy, keep_late=True
    )
    info.charge = charge
    return result, info


async def embed(
    plan: RoutePlan,
    inputs: list[str],
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    route: RouteInfo | None = None,
) -> tuple[EmbeddingResult, RouteInfo]:
    """Embeddings with the same failover; the charge is on RouteInfo.charge."""
    rt = runtime or get_runtime()
    info = route or RouteInfo.for_plan(plan)

    async def call(c: Candidate) -> tuple[EmbeddingResult, Charge]:
        price = c.model.price_at(rt.utcnow())
        dialect = get_dialect(c.provider.dialect)
        bound = UsageBound.for_inputs(c.model, inputs)
        info.in_flight = InFlight(c.model, price, bound, estimate_inputs_usage(inputs))
        result = await dialect.embed(rt.client(), c.provider, c.model.upstream, inputs)
        return result, charge_for(c.model, price, result.usage, bound)

    (result, charge), _ = await _walk(
        plan, info, call, deadline=deadline, rt=rt, policy=policy, keep_late=True
    )
    info.charge = charge
    return result, info


class ChatStream:
    """Async iterator of StreamEvents; .route is filled in as the stream goes.

    Failover happens only before the first event reaches the caller (an error raised, or an
    ERROR event, before the first event); after that every event, a final ERROR included, passes
    through unchanged. route.charge is set when the stream ends or is closed: the usage the
    provider reported, and for what it had not reported yet an estimate from what arrived
    (text, reasoning and tool calls), flagged as such.
    """

    def __init__(
        self,
        plan: RoutePlan,
        request: ChatRequest,
        *,
        deadline: float,
        runtime: Runtime | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.route = RouteInfo.for_plan(plan)
        self._plan, self._request, self._deadline = plan, request, deadline
        self._rt = runtime or get_runtime()
        self._policy = policy
        self._events = self._run()
        self._first: StreamEvent | None = None

    async def open(self) -> None:
        """Fail over up to the first event now, so routing errors (502/504/...) surface before
        the caller commits to a 200 streaming response."""
        if self._first is None:
            self._first = await anext(self._events)

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._first is not None:
            event, self._first = self._first, None
            return event
        return await anext(self._events)

    async def aclose(self) -> None:
        await self._events.aclose()

    async def _run(self) -> AsyncIterator[StreamEvent]:
        rt, info = self._rt, self.route
        price: dict[str, PriceRow] = {}
        started: dict[str, float] = {}
        sent: dict[str, ChatRequest] = {}

        async def open_stream(c: Candidate) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
            price[c.model.id] = c.model.price_at(rt.utcnow())
            started[c.model.id] = rt.monotonic()
            upstream = upstream_request(c, self._request, info, stream=True)
            sent[c.model.id] = upstream
            info.in_flight = InFlight(
                c.model,
                price[c.model.id],
                UsageBound.for_chat(c.model, upstream),
                prompt_estimate(upstream),
                upstream,
            )
            events = get_dialect(c.provider.dialect).stream(rt.client(), c.provider, upstream)
            try:
                first = await _first_byte(anext(events), c, self._policy.first_byte_timeout)
            except StopAsyncIteration:
                raise ProviderError(
                    ErrorKind.OVERLOADED, "stream ended before any event", provider=c.provider.id
                ) from None
            except BaseException:
                await _close(events)
                raise
            if first.type is StreamEventType.ERROR and first.error is not None:
                await _close(events)
                raise first.error
            return events, first

        (events, first), served = await _walk(
            self._plan,
            info,
            open_stream,
            deadline=self._deadline,
            rt=rt,
            policy=self._policy,
            record_success=False,
        )
        begun = started[served.model.id]
        info.ttft_ms = (rt.monotonic() - begun) * 1000
        usage: Usage | None = None
        outcome: ProviderError | None = None
        finished = False
        produced: list[str] = []
        try:
            event: StreamEvent | None = first
            while event is not None:
                if event.usage is not None:
                    usage = event.usage
                if event.type in _PRODUCED:
                    produced.append(event.text)
                if event.type is StreamEventType.ERROR:
                    outcome = event.error
                finished = finished or event.type in (StreamEventType.DONE, StreamEventType.ERROR)
                yield event
                waited = rt.monotonic()
                try:
                    async with asyncio.timeout(self._policy.idle_timeout):
                        event = await anext(events, None)
                except TimeoutError:  # stalled: bill what arrived, as for a cut stream
                    request = sent[served.model.id]
                    usage = fill_unreported(usage, request.messages, "".join(produced))
                    stalled = _stalled(served, self._policy.idle_timeout)
                    event = StreamEvent(StreamEventType.ERROR, error=stalled)
                info.upstream_ms += (rt.monotonic() - waited) * 1000
        finally:
            await _close(events)
            request = sent[served.model.id]
            if not finished:  # closed early: top up what the provider had not reported yet
                usage = fill_unreported(usage, request.messages, "".join(produced))
            info.charge = charge_for(
                served.model,
                price[served.model.id],
                usage or Usage(),
                UsageBound.for_chat(served.model, request),
                request,
            )
            if finished:
                await _record(
                    rt,
                    served,
                    outcome,
                    latency_ms=(rt.monotonic() - begun) * 1000,
                    ttft_ms=info.ttft_ms,
                )


def stream(
    plan: RoutePlan,
    request: ChatRequest,
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> ChatStream:
    return ChatStream(plan, request, deadline=deadline, runtime=runtime, policy=policy)


async def _first_byte(answer: Awaitable[T], candidate: Candidate, timeout: float | None) -> T:
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


def _stalled(candidate: Candidate, timeout: float | None) -> ProviderError:
    return ProviderError(
        ErrorKind.TIMEOUT,
        f"{candidate.provider.name}: the stream stalled (nothing for {timeout:g}s)",
        provider=candidate.provider.id,
    )


async def _close(events: Any) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()


# --- the walk ------------------------------------------------------------------------------


async def _walk(
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
                        await _record(rt, candidate, error, latency_ms=elapsed)
                        if error.retry_after and error.kind is ErrorKind.RATE_LIMITED:
                            await rt.breaker.back_off(provider, error.retry_after)
                        if not error.retryable:
                            raise UpstreamRejectedError(error, route=info) from error
                        delay = _backoff(policy, retry, error, rt.jitter())
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
                        await _record(rt, candidate, None, latency_ms=elapsed)
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


def prompt_estimate(request: ChatRequest) -> Usage:
    return Usage(
        input_tokens=estimate_messages_tokens(request.messages),
        estimated_parts=frozenset({"input"}),
    )


def _retrieve(attempt: asyncio.Future) -> None:
    # A late attempt nobody waits for any more must not log "exception never retrieved".
    if not attempt.cancelled():
        attempt.exception()


def _backoff(policy: RetryPolicy, retry: int, error: ProviderError, jitter: float) -> float | None:
    """Seconds to wait before retrying the same candidate, or None to move on at once."""
    exponential = policy.base_backoff * (2**retry) * (0.5 + jitter / 2)
    delay = max(exponential, error.retry_after or 0.0)
    return None if delay > policy.max_backoff else delay


async def _record(
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
    health = rt.health.record(
        provider,
        model,
        ok=answered,
        latency_ms=latency_ms if error is None else None,
        ttft_ms=ttft_ms,
        error_kind=None if error is None else error.kind,
    )
    if answered:
        breaker = rt.breaker.record_success(provider)
    elif error is not None and error.retryable:
        breaker = rt.breaker.record_failure(provider)
    else:
        breaker = asyncio.sleep(0)
    await asyncio.gather(health, breaker)


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
