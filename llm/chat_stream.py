"""A streamed chat call with failover: candidates are tried until one sends its first event;
after that the stream is the serving candidate's, passed through as it comes (a silent one is
ended by the idle timeout), and its charge is settled on RouteInfo when it ends or is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from llm.attempts import prompt_estimate, record_health, upstream_request, walk
from llm.charges import UsageBound, charge_for
from llm.prices import PriceRow
from llm.providers import get_dialect
from llm.retry_policy import DEFAULT_POLICY, IdleWatch, RetryPolicy, first_byte, stalled
from llm.route_info import InFlight, RouteInfo
from llm.routing import Candidate, RoutePlan
from llm.runtime import Runtime, get_runtime
from llm.tokens import TextTally, fill_unreported
from llm.types import (
    ChatRequest,
    ErrorKind,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)

_PRODUCED = frozenset({StreamEventType.DELTA, StreamEventType.REASONING, StreamEventType.TOOL_CALL})


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
                first = await first_byte(anext(events), c, self._policy.first_byte_timeout)
            except StopAsyncIteration:
                raise ProviderError(
                    ErrorKind.OVERLOADED, "stream ended before any event", provider=c.provider.id
                ) from None
            except BaseException:
                await close_events(events)
                raise
            if first.type is StreamEventType.ERROR and first.error is not None:
                await close_events(events)
                raise first.error
            return events, first

        (events, first), served = await walk(
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
        produced = TextTally()  # what arrived, counted (not kept) for an early end's estimate
        watch = IdleWatch(self._policy.idle_timeout)
        try:
            event: StreamEvent | None = first
            while event is not None:
                if event.usage is not None:
                    usage = event.usage
                if event.type in _PRODUCED:
                    produced.add(event.text)
                if event.type is StreamEventType.ERROR:
                    outcome = event.error
                finished = finished or event.type in (StreamEventType.DONE, StreamEventType.ERROR)
                yield event
                waited = rt.monotonic()
                watch.waiting()
                try:
                    event = await anext(events, None)
                except asyncio.CancelledError:
                    if not watch.expired():
                        raise
                    # stalled: bill what arrived, as for a cut stream
                    request = sent[served.model.id]
                    usage = fill_unreported(usage, request.messages, produced)
                    error = stalled(served, self._policy.idle_timeout)
                    event = StreamEvent(StreamEventType.ERROR, error=error)
                watch.done_waiting()
                info.upstream_ms += (rt.monotonic() - waited) * 1000
        finally:
            watch.close()
            await close_events(events)
            request = sent[served.model.id]
            if not finished:  # closed early: top up what the provider had not reported yet
                usage = fill_unreported(usage, request.messages, produced)
            info.charge = charge_for(
                served.model,
                price[served.model.id],
                usage or Usage(),
                UsageBound.for_chat(served.model, request),
                request,
            )
            if finished:
                await record_health(
                    rt,
                    served,
                    outcome,
                    latency_ms=(rt.monotonic() - begun) * 1000,
                    ttft_ms=info.ttft_ms,
                )


async def close_events(events: Any) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()
