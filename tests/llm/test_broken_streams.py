"""A stream that breaks after it started never raises: it reports usage so far, then ERROR."""

from __future__ import annotations

import httpx
import pytest

from llm.providers import get_dialect
from llm.types import ErrorKind, ProviderError, StreamEventType
from tests.llm.cases import BY_ID
from tests.llm.fakes import (
    FakeUpstream,
    collect,
    fixture_text,
    question,
    stream_reply,
    text_of,
    upstream_for,
)

CUT_STREAMS = {
    "openai": "openai/stream_cut.txt",
    "anthropic": "anthropic/stream_cut.txt",
    "gemini": "gemini/stream_cut.txt",
    "cohere": "cohere/stream_cut.txt",
    "ollama": "ollama/stream_cut.ndjson",
}
DIALECTS = list(CUT_STREAMS)
RECEIVED = "Paris is the"  # the first two pieces every cut fixture carries


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_connection_dropped_mid_stream_ends_with_usage_then_a_connection_error(
    dialect: str,
) -> None:
    case = BY_ID[dialect]
    fake = upstream_for(
        case,
        stream=CUT_STREAMS[dialect],
        stream_error=httpx.RemoteProtocolError("peer closed connection"),
    )
    async with fake.client() as client:
        events = await collect(
            get_dialect(dialect).stream(client, case.provider, question(case.model))
        )

    assert text_of(events) == RECEIVED
    assert [e.type for e in events[-2:]] == [StreamEventType.USAGE, StreamEventType.ERROR]
    assert StreamEventType.DONE not in [e.type for e in events]
    usage = events[-2].usage
    assert usage.output_tokens >= 1
    assert usage.input_tokens > 0
    assert usage.estimated is True
    error = events[-1].error
    assert error.kind == ErrorKind.CONNECTION
    assert error.retryable
    assert case.provider.name in error.message


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_stream_that_just_stops_without_its_final_event_is_reported_broken(
    dialect: str,
) -> None:
    case = BY_ID[dialect]
    fake = upstream_for(case, stream=CUT_STREAMS[dialect])
    async with fake.client() as client:
        events = await collect(
            get_dialect(dialect).stream(client, case.provider, question(case.model))
        )

    assert text_of(events) == RECEIVED
    assert [e.type for e in events[-2:]] == [StreamEventType.USAGE, StreamEventType.ERROR]
    assert events[-1].error.kind == ErrorKind.CONNECTION


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_read_timeout_mid_stream_ends_with_a_timeout_error(dialect: str) -> None:
    case = BY_ID[dialect]
    fake = upstream_for(
        case, stream=CUT_STREAMS[dialect], stream_error=httpx.ReadTimeout("read timed out")
    )
    async with fake.client() as client:
        events = await collect(
            get_dialect(dialect).stream(client, case.provider, question(case.model))
        )

    assert events[-2].type == StreamEventType.USAGE
    assert events[-1].type == StreamEventType.ERROR
    assert events[-1].error.kind == ErrorKind.TIMEOUT


async def test_usage_reported_before_the_break_is_kept() -> None:
    case = BY_ID["anthropic"]  # message_start already told us the input tokens
    fake = upstream_for(case, stream="anthropic/stream_cut.txt")
    async with fake.client() as client:
        events = await collect(
            get_dialect("anthropic").stream(client, case.provider, question(case.model))
        )

    assert events[-2].usage.input_tokens == 14


async def test_an_overloaded_error_event_mid_stream_is_passed_on_as_an_error_event() -> None:
    case = BY_ID["anthropic"]
    fake = upstream_for(case, stream="anthropic/stream_overloaded.txt")
    async with fake.client() as client:
        events = await collect(
            get_dialect("anthropic").stream(client, case.provider, question(case.model))
        )

    assert text_of(events) == "Paris"
    assert [e.type for e in events[-2:]] == [StreamEventType.USAGE, StreamEventType.ERROR]
    assert events[-1].error.kind == ErrorKind.OVERLOADED
    assert "Overloaded" in events[-1].error.message


async def test_an_openai_error_chunk_mid_stream_is_passed_on_as_an_error_event() -> None:
    case = BY_ID["together"]
    fake = upstream_for(case, stream="openai/stream_error_event.txt")
    async with fake.client() as client:
        events = await collect(
            get_dialect("openai").stream(client, case.provider, question(case.model))
        )

    assert text_of(events) == "Par"
    assert events[-1].type == StreamEventType.ERROR
    assert events[-1].error.kind == ErrorKind.OVERLOADED
    assert "server had an error" in events[-1].error.message


async def test_malformed_json_mid_stream_is_a_connection_error_event() -> None:
    case = BY_ID["openai"]
    fake = FakeUpstream("openai", auth=case.auth)
    garbled = fixture_text("openai/stream_cut.txt") + 'data: {"choices": [\n\n'
    fake.route("POST", "/v1/chat/completions", stream_reply(garbled))
    async with fake.client() as client:
        events = await collect(
            get_dialect("openai").stream(client, case.provider, question(case.model))
        )

    assert text_of(events) == RECEIVED
    assert events[-1].type == StreamEventType.ERROR
    assert events[-1].error.kind == ErrorKind.CONNECTION
    assert "malformed" in events[-1].error.message


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_stream_broken_before_anything_arrived_raises_so_the_caller_can_fail_over(
    dialect: str,
) -> None:
    case = BY_ID[dialect]
    fake = FakeUpstream(dialect, auth=case.auth)
    fake.route(
        "POST",
        httpx.URL(case.stream_url).path,
        stream_reply("", error=httpx.RemoteProtocolError("peer closed connection")),
    )
    async with fake.client() as client:
        stream = get_dialect(dialect).stream(client, case.provider, question(case.model))
        with pytest.raises(ProviderError) as caught:
            await anext(stream)

    assert caught.value.kind == ErrorKind.CONNECTION
    assert caught.value.retryable
