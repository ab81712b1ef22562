from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from llm.errors import (
    AllProvidersFailedError,
    GatewayTimeoutError,
    ProvidersBackingOffError,
    UpstreamRejectedError,
)
from llm.failover import RetryPolicy, complete, embed, stream
from llm.routing import resolve
from llm.types import ChatRequest, ErrorKind, StreamEvent, StreamEventType, Usage

from .conftest import NOW, fail, ok_result

RETRYABLE = [
    (ErrorKind.OVERLOADED, 500),
    (ErrorKind.RATE_LIMITED, 429),
    (ErrorKind.TIMEOUT, None),
    (ErrorKind.CONNECTION, None),
]
ONE_TRY = RetryPolicy(attempts_per_candidate=1)


# Long enough that the usage the fakes report is within what it could produce.
PROMPT = "hi " * 1000


def request() -> ChatRequest:
    return ChatRequest(model="whatever", messages=[{"role": "user", "content": PROMPT}])


@pytest.fixture
def plan(catalog):
    return resolve(catalog, "a-big", now=NOW)  # a-big -> b-mid -> g-cheap


@pytest.mark.parametrize(("kind", "status"), RETRYABLE)
async def test_a_retryable_error_fails_over_to_the_next_candidate(
    fake, runtime, plan, kind, status
):
    fake.chats["alpha-big-2025"] = [fail(kind, status=status)]
    result, route = await complete(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    assert fake.calls == [("alpha", "alpha-big-2025"), ("beta", "beta-mid")]
    assert (result.provider, route.served_provider, route.served_model) == ("beta", "beta", "b-mid")
    assert [(a.provider, a.error_kind) for a in route.attempts] == [
        ("alpha", str(kind)),
        ("beta", None),
    ]


@pytest.mark.parametrize(("kind", "status"), [(ErrorKind.BAD_REQUEST, 400), (ErrorKind.AUTH, 401)])
async def test_a_non_retryable_error_is_raised_without_failover(fake, runtime, plan, kind, status):
    fake.chats["alpha-big-2025"] = [fail(kind, status=status)]
    with pytest.raises(UpstreamRejectedError) as caught:
        await complete(plan, request(), deadline=5, runtime=runtime)
    assert fake.calls == [("alpha", "alpha-big-2025")]
    assert caught.value.http_status == (400 if kind is ErrorKind.BAD_REQUEST else 502)
    assert caught.value.route.attempts[0].status == status


async def test_each_attempt_asks_for_the_candidates_upstream_model(fake, runtime, plan):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.OVERLOADED)] * 2
    original = request()
    await complete(plan, original, deadline=5, runtime=runtime)
    assert [m for _, m in fake.calls] == ["alpha-big-2025", "alpha-big-2025", "beta-mid"]
    assert original.model == "whatever"


async def test_retries_back_off_exponentially_and_honour_retry_after(fake, runtime, plan, clock):
    policy = RetryPolicy(attempts_per_candidate=3, max_attempts=9, base_backoff=0.1, max_backoff=2)
    fake.chats["alpha-big-2025"] = [
        fail(ErrorKind.OVERLOADED),
        fail(ErrorKind.RATE_LIMITED, retry_after=1.5),
    ]
    result, route = await complete(plan, request(), deadline=30, runtime=runtime, policy=policy)
    # jitter is pinned to its top (1.0): 0.1 x 2^0 first, then Retry-After 1.5 beats 0.2.
    assert clock.slept == [0.1, 1.5]
    assert route.served_provider == "alpha" and len(route.attempts) == 3


async def test_a_retry_after_longer_than_the_backoff_cap_moves_on_at_once(
    fake, runtime, plan, clock
):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.RATE_LIMITED, retry_after=60)]
    _, route = await complete(plan, request(), deadline=30, runtime=runtime)
    assert clock.slept == [] and route.served_provider == "beta"


async def test_total_attempts_are_bounded(fake, runtime, plan):
    for upstream in ("alpha-big-2025", "beta-mid", "gamma-cheap"):
        fake.chats[upstream] = [fail(ErrorKind.OVERLOADED)] * 5
    policy = RetryPolicy(attempts_per_candidate=2, max_attempts=3, base_backoff=0.01)
    with pytest.raises(AllProvidersFailedError):
        await complete(plan, request(), deadline=30, runtime=runtime, policy=policy)
    assert len(fake.calls) == 3


async def test_when_every_candidate_fails_the_error_names_each_attempt(fake, runtime, plan):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.OVERLOADED, status=503)]
    fake.chats["beta-mid"] = [fail(ErrorKind.RATE_LIMITED, status=429)]
    fake.chats["gamma-cheap"] = [fail(ErrorKind.CONNECTION)]
    with pytest.raises(AllProvidersFailedError) as caught:
        await complete(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    error = caught.value
    assert error.http_status == 502 and "alpha, beta, gamma" in str(error)
    assert [(a.provider, a.error_kind, a.status) for a in error.route.attempts] == [
        ("alpha", "overloaded", 503),
        ("beta", "rate_limited", 429),
        ("gamma", "connection", None),
    ]


async def test_the_deadline_raises_a_timeout_naming_the_provider_waited_on(fake, runtime, plan):
    async def hang():
        await asyncio.sleep(5)

    fake.chats["alpha-big-2025"] = [hang]
    with pytest.raises(GatewayTimeoutError) as caught:
        await complete(plan, request(), deadline=0.05, runtime=runtime)
    assert caught.value.http_status == 504 and caught.value.last_provider == "alpha"
    assert "alpha" in str(caught.value)
    assert caught.value.route.attempts[-1].error_kind == "timeout"


async def test_the_cost_uses_the_price_in_force_and_names_its_version(fake, runtime, plan):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.OVERLOADED)]
    fake.chats["beta-mid"] = [
        ok_result(usage=Usage(input_tokens=2000, output_tokens=1000, cached_input_tokens=1000))
    ]
    result, route = await complete(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    # June 2025 row of b-mid: 1000 x 2 + 1000 x 0.20 + 1000 x 10 = 12200 per million
    assert route.charge.cost == Decimal("0.01220000")
    assert route.charge.price.version == "b-mid@2025-06-01"


async def test_upstream_time_is_measured_without_backoff(fake, runtime, plan, clock):
    fake.latency = 0.2
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.OVERLOADED)]
    _, route = await complete(plan, request(), deadline=30, runtime=runtime)
    assert clock.slept == [0.25]
    assert route.upstream_ms == pytest.approx(400)


async def test_attempts_are_recorded_in_health_and_the_breaker(fake, runtime, plan):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.OVERLOADED)] * 10
    policy = RetryPolicy(attempts_per_candidate=1)
    for _ in range(5):
        await complete(plan, request(), deadline=5, runtime=runtime, policy=policy)
    await runtime.health.refresh(force=True)
    assert runtime.health.provider_stats("alpha").error_rate == 1.0
    assert runtime.health.model_stats("b-mid").error_rate == 0.0
    assert await runtime.breaker.open_providers(["alpha", "beta"]) == {"alpha"}
    # The open circuit is now skipped without a call.
    fake.calls.clear()
    _, route = await complete(plan, request(), deadline=5, runtime=runtime)
    assert fake.calls == [("beta", "beta-mid")]
    assert route.attempts[0].error_kind == "circuit_open"


async def test_embeddings_fail_over_and_are_priced(fake, runtime, catalog):
    plan = resolve(catalog, "emb", needs={"embeddings"}, now=NOW)
    result, route = await embed(plan, ["one two", "three"], deadline=5, runtime=runtime)
    assert fake.calls == [("alpha", "alpha-embed")] and len(result.vectors) == 2
    assert route.charge.cost == Decimal("0.00000006")
    assert route.charge.price.version == "emb@2025-01-01"


# --- streams -------------------------------------------------------------------------------


def delta(text: str) -> StreamEvent:
    return StreamEvent(StreamEventType.DELTA, text=text)


DONE = StreamEvent(StreamEventType.DONE, finish_reason="stop")


def usage_event(inp: int, out: int) -> StreamEvent:
    return StreamEvent(StreamEventType.USAGE, usage=Usage(input_tokens=inp, output_tokens=out))


async def collect(chat_stream) -> list[StreamEvent]:
    return [event async for event in chat_stream]


async def test_a_stream_fails_over_when_the_error_comes_before_the_first_event(fake, runtime, plan):
    fake.streams["alpha-big-2025"] = [[fail(ErrorKind.CONNECTION)]]
    fake.streams["beta-mid"] = [[delta("he"), delta("llo"), usage_event(10, 2), DONE]]
    chat_stream = stream(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    events = await collect(chat_stream)
    assert "".join(e.text for e in events) == "hello"
    route = chat_stream.route
    assert route.served_provider == "beta" and route.attempts[0].error_kind == "connection"
    assert route.charge.usage == Usage(input_tokens=10, output_tokens=2)
    assert route.charge.cost == Decimal("0.00004000")
    assert route.charge.price.version == "b-mid@2025-06-01"
    assert route.ttft_ms is not None


async def test_an_error_event_before_any_content_also_fails_over(fake, runtime, plan):
    error_first = StreamEvent(StreamEventType.ERROR, error=fail(ErrorKind.OVERLOADED))
    fake.streams["alpha-big-2025"] = [[error_first]]
    events = await collect(stream(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY))
    assert events[-1].type is StreamEventType.DONE
    assert [p for p, _ in fake.calls] == ["alpha", "beta"]


async def test_a_stream_does_not_fail_over_after_the_first_event(fake, runtime, plan):
    broken = StreamEvent(StreamEventType.ERROR, error=fail(ErrorKind.CONNECTION))
    fake.streams["alpha-big-2025"] = [[delta("par"), usage_event(5, 1), broken]]
    chat_stream = stream(plan, request(), deadline=5, runtime=runtime)
    events = await collect(chat_stream)
    assert [e.type for e in events] == [
        StreamEventType.DELTA,
        StreamEventType.USAGE,
        StreamEventType.ERROR,
    ]
    assert fake.calls == [("alpha", "alpha-big-2025")]
    assert chat_stream.route.charge.usage == Usage(input_tokens=5, output_tokens=1)
    await runtime.health.refresh(force=True)
    assert runtime.health.provider_stats("alpha").error_rate == 1.0


async def test_a_stream_closed_early_still_reports_usage_so_far(fake, runtime, plan):
    fake.streams["alpha-big-2025"] = [[usage_event(7, 1), delta("a"), delta("b"), DONE]]
    chat_stream = stream(plan, request(), deadline=5, runtime=runtime)
    async for event in chat_stream:
        if event.type is StreamEventType.DELTA:
            break
    await chat_stream.aclose()
    assert chat_stream.route.charge.usage == Usage(input_tokens=7, output_tokens=1)
    assert chat_stream.route.charge.cost == Decimal("0.00004400")


async def test_when_every_circuit_is_open_the_planned_candidate_is_still_tried(
    fake, runtime, catalog
):
    for provider in ("alpha", "beta", "gamma"):
        for _ in range(5):
            await runtime.breaker.record_failure(provider)
    open_now = await runtime.breaker.open_providers(["alpha", "beta", "gamma"])
    plan = resolve(catalog, "a-big", open_circuits=open_now, now=NOW)
    result, route = await complete(plan, request(), deadline=5, runtime=runtime)
    assert fake.calls == [("alpha", "alpha-big-2025")] and route.served_provider == "alpha"
    assert await runtime.breaker.open_providers(["alpha"]) == frozenset()


async def test_opening_a_stream_surfaces_routing_errors_before_any_event(fake, runtime, plan):
    for upstream in ("alpha-big-2025", "beta-mid", "gamma-cheap"):
        fake.streams[upstream] = [[fail(ErrorKind.OVERLOADED)]]
    chat_stream = stream(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    with pytest.raises(AllProvidersFailedError):
        await chat_stream.open()
    ok_stream = stream(plan, request(), deadline=5, runtime=runtime, policy=ONE_TRY)
    fake.streams["alpha-big-2025"] = [[delta("x"), DONE]]
    await ok_stream.open()
    assert ok_stream.route.served_provider == "alpha"
    assert [e.text for e in await collect(ok_stream)] == ["x", ""]


async def test_a_retry_after_keeps_every_later_call_away_from_that_provider(
    fake, runtime, plan, clock
):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.RATE_LIMITED, status=429, retry_after=5)]
    for _ in range(10):
        _, route = await complete(plan, request(), deadline=30, runtime=runtime)
        assert route.served_provider == "beta"
    assert fake.calls.count(("alpha", "alpha-big-2025")) == 1  # not once more inside the 5 s
    clock.advance(5.1)
    _, route = await complete(plan, request(), deadline=30, runtime=runtime)
    assert route.served_provider == "alpha"


async def test_a_retry_after_is_bounded(fake, runtime, plan, clock):
    fake.chats["alpha-big-2025"] = [fail(ErrorKind.RATE_LIMITED, status=429, retry_after=1e9)]
    await complete(plan, request(), deadline=30, runtime=runtime)
    clock.advance(301)
    _, route = await complete(plan, request(), deadline=30, runtime=runtime)
    assert route.served_provider == "alpha"


async def test_when_every_candidate_asked_to_wait_the_answer_is_503_with_the_wait(
    fake, runtime, catalog, clock
):
    plan = resolve(catalog, "g-cheap", now=NOW)
    fake.chats["gamma-cheap"] = [fail(ErrorKind.RATE_LIMITED, status=429, retry_after=7)]
    with pytest.raises(AllProvidersFailedError):
        await complete(plan, request(), deadline=30, runtime=runtime, policy=ONE_TRY)
    with pytest.raises(ProvidersBackingOffError) as caught:
        await complete(plan, request(), deadline=30, runtime=runtime, policy=ONE_TRY)
    assert caught.value.http_status == 503 and 6 < caught.value.retry_after <= 7
    assert len(fake.calls) == 1


async def test_a_silent_first_candidate_fails_over_after_the_first_byte_timeout(
    fake, runtime, plan
):
    async def hang():
        await asyncio.sleep(5)

    fake.chats["alpha-big-2025"] = [hang]
    policy = RetryPolicy(attempts_per_candidate=1, first_byte_timeout=0.05)
    result, route = await complete(plan, request(), deadline=30, runtime=runtime, policy=policy)
    assert route.served_provider == "beta"
    assert route.attempts[0].error_kind == "timeout" and "first-byte" in route.attempts[0].message
