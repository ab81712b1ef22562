"""Every provider, streamed and not, through a fake that speaks its documented wire format."""

from __future__ import annotations

import gc
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import llm
from llm.providers import get_dialect
from llm.types import ErrorKind, ProviderError, StreamEventType
from tests.llm.cases import CASES, KEYED_CASES, OPENROUTER_HEADERS
from tests.llm.fakes import (
    DEFAULT_CHAT,
    Case,
    collect,
    fixture_json,
    question,
    text_of,
    upstream_for,
)

LLM = Path(llm.__file__).parent
ANSWER = "Paris is the capital of France."
SYSTEM = "Answer in one sentence."
USER = "What is the capital of France?"


def sent_prompt(dialect: str, body: dict[str, Any]) -> tuple[str, str, int, float]:
    """(system prompt, last user text, token cap, temperature) as each wire format holds them."""
    if dialect == "openai":
        messages = body["messages"]
        return (
            messages[0]["content"],
            messages[-1]["content"],
            body["max_tokens"],
            body["temperature"],
        )
    if dialect == "anthropic":
        return (
            body["system"],
            body["messages"][-1]["content"][0]["text"],
            body["max_tokens"],
            body["temperature"],
        )
    if dialect == "gemini":
        config = body["generationConfig"]
        return (
            body["systemInstruction"]["parts"][0]["text"],
            body["contents"][-1]["parts"][0]["text"],
            config["maxOutputTokens"],
            config["temperature"],
        )
    if dialect == "cohere":
        messages = body["messages"]
        return (
            messages[0]["content"],
            messages[-1]["content"],
            body["max_tokens"],
            body["temperature"],
        )
    if dialect == "perplexity":
        return (
            body["instructions"],
            body["input"][-1]["content"],
            body["max_output_tokens"],
            body["temperature"],
        )
    messages = body["messages"]  # ollama
    return (
        messages[0]["content"],
        messages[-1]["content"],
        body["options"]["num_predict"],
        body["options"]["temperature"],
    )


def answering_model(case: Case) -> str:
    data = fixture_json(DEFAULT_CHAT[case.provider.dialect])
    return data.get("model") or data.get("modelVersion")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_a_plain_chat_reaches_the_provider_url_with_its_auth_and_parses_the_answer(
    case: Case,
) -> None:
    fake = upstream_for(case)
    async with fake.client() as client:
        result = await get_dialect(case.provider.dialect).chat(
            client, case.provider, question(case.model)
        )

    sent = fake.last
    assert sent.method == "POST"
    assert str(sent.url) == case.chat_url
    if case.auth is None:
        assert "authorization" not in sent.headers
    for name, value in case.provider.headers.items():
        assert sent.headers[name] == value
    assert sent_prompt(case.provider.dialect, sent.body) == (SYSTEM, USER, 50, 0.2)
    assert sent.body.get("stream") in (None, False)

    assert result.text == ANSWER
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (14, 7)
    assert result.usage.estimated is False
    assert result.provider == case.id
    assert result.model == (answering_model(case) or case.model)
    assert result.latency_ms > 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_a_streamed_chat_yields_deltas_then_usage_then_done(case: Case) -> None:
    fake = upstream_for(case)
    async with fake.client() as client:
        events = await collect(
            get_dialect(case.provider.dialect).stream(client, case.provider, question(case.model))
        )

    sent = fake.last
    assert str(sent.url) == case.stream_url
    assert sent_prompt(case.provider.dialect, sent.body) == (SYSTEM, USER, 50, 0.2)
    if case.provider.dialect != "gemini":  # Gemini streams by URL, not by a body flag
        assert sent.body["stream"] is True

    assert text_of(events) == ANSWER
    assert [e.type for e in events[-2:]] == [StreamEventType.USAGE, StreamEventType.DONE]
    # Counts reported mid-stream (Anthropic's message_start, Gemini's running totals) come as
    # USAGE events between the deltas.
    assert {e.type for e in events[:-2]} <= {StreamEventType.DELTA, StreamEventType.USAGE}
    usage = events[-2].usage
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (14, 7, False)
    assert events[-1].finish_reason == "stop"
    assert events[-1].model


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_a_stream_leaves_none_of_its_generators_for_the_event_loop_to_close(
    case: Case,
) -> None:
    """A decoder stops at its terminal event, before the body's end: the generators beneath it
    are closed then, not left to the loop's finaliser (a self-pipe wake-up and a task each)."""
    firstiter, finalizer = sys.get_asyncgen_hooks()
    left: list[str] = []

    def record(agen) -> None:
        if agen.ag_code.co_filename.startswith(str(LLM)):
            left.append(agen.__qualname__)
        finalizer(agen)

    sys.set_asyncgen_hooks(firstiter, record)
    try:
        fake = upstream_for(case)
        async with fake.client() as client:
            dialect = get_dialect(case.provider.dialect)
            events = await collect(dialect.stream(client, case.provider, question(case.model)))
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(firstiter, finalizer)
    assert events[-1].type is StreamEventType.DONE
    assert left == []


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.provider.dialect == "openai"], ids=lambda c: c.id
)
async def test_openai_dialect_providers_ask_for_stream_usage_unless_their_quirk_says_no(
    case: Case,
) -> None:
    fake = upstream_for(case)
    async with fake.client() as client:
        await collect(get_dialect("openai").stream(client, case.provider, question(case.model)))

    if case.provider.quirks.get("stream_usage", True):
        assert fake.last.body["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in fake.last.body


async def test_openrouter_requests_carry_its_attribution_headers() -> None:
    case = next(c for c in CASES if c.id == "openrouter")
    fake = upstream_for(case)
    async with fake.client() as client:
        await get_dialect("openai").chat(client, case.provider, question(case.model))

    for name, value in OPENROUTER_HEADERS.items():
        assert fake.last.headers[name] == value


@pytest.mark.parametrize("case", KEYED_CASES, ids=lambda c: c.id)
async def test_a_wrong_key_is_an_auth_error_naming_the_provider_without_leaking_the_key(
    case: Case,
) -> None:
    wrong = replace(case.provider, api_key="sk-test-openai-key")
    fake = upstream_for(case)
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect(case.provider.dialect).chat(client, wrong, question(case.model))

    error = caught.value
    assert error.kind == ErrorKind.AUTH
    assert not error.retryable
    assert error.provider == case.id
    assert case.provider.name in error.message
    assert "sk-test-openai-key" not in error.message
    assert "sk-test-openai-key" not in str(error)
