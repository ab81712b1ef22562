"""OpenAI chat-completions dialect: pass-through, usage details and per-provider extras."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llm.providers import get_dialect
from llm.types import StreamEventType
from tests.llm.cases import BY_ID, SONAR_CHAT_COMPLETIONS
from tests.llm.fakes import (
    WEATHER_TOOL,
    FakeUpstream,
    collect,
    fixture_json,
    json_reply,
    question,
    text_of,
    tool_calls_of,
    upstream_for,
)

OPENAI = get_dialect("openai")


async def test_request_options_and_extra_parameters_are_passed_through_untouched() -> None:
    case = BY_ID["groq"]
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "capital",
            "strict": True,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    request = question(
        case.model,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        user="tenant-1",
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        response_format=schema,
        extra={"parallel_tool_calls": False, "logprobs": True},
    )
    fake = upstream_for(case)
    async with fake.client() as client:
        await OPENAI.chat(client, case.provider, request)

    body = fake.last.body
    assert body["messages"] == request.messages
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\n\n"]
    assert body["seed"] == 7
    assert body["user"] == "tenant-1"
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "auto"
    assert body["response_format"] == schema
    assert body["parallel_tool_calls"] is False
    assert body["logprobs"] is True
    assert body["stream"] is False
    assert "stream_options" not in body


async def test_unset_options_are_left_out_of_the_body() -> None:
    case = BY_ID["together"]
    fake = upstream_for(case)
    async with fake.client() as client:
        await OPENAI.chat(
            client, case.provider, question(case.model, max_tokens=None, temperature=None)
        )

    assert set(fake.last.body) == {"model", "messages", "stream"}


async def test_the_max_tokens_field_quirk_renames_the_token_cap() -> None:
    case = BY_ID["openai"]
    provider = replace(case.provider, quirks={"max_tokens_field": "max_completion_tokens"})
    fake = upstream_for(case)
    async with fake.client() as client:
        await OPENAI.chat(client, provider, question(case.model, max_tokens=123))

    assert fake.last.body["max_completion_tokens"] == 123
    assert "max_tokens" not in fake.last.body


async def test_cached_prompt_tokens_are_reported_and_length_finish_is_kept() -> None:
    case = BY_ID["openai"]
    fake = upstream_for(case, chat="openai/chat_cached.json")
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question(case.model))

    assert result.usage.input_tokens == 2006
    assert result.usage.cached_input_tokens == 1920
    assert result.usage.output_tokens == 300
    assert result.finish_reason == "length"


async def test_deepseek_reasoning_content_and_cache_hits_are_read() -> None:
    case = BY_ID["deepseek"]
    fake = upstream_for(case, chat="openai/deepseek_chat.json")
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question("deepseek-reasoner"))

    assert result.text == "9.11 is smaller than 9.8."
    assert result.reasoning == "Compare the decimals: 0.11 < 0.80."
    assert result.usage.cached_input_tokens == 16
    assert (result.usage.input_tokens, result.usage.output_tokens) == (20, 60)


async def test_deepseek_streams_reasoning_as_reasoning_events_before_the_answer() -> None:
    case = BY_ID["deepseek"]
    fake = upstream_for(case, stream="openai/deepseek_stream.txt")
    async with fake.client() as client:
        events = await collect(OPENAI.stream(client, case.provider, question("deepseek-reasoner")))

    reasoning = [e.text for e in events if e.type == StreamEventType.REASONING]
    assert "".join(reasoning) == "Compare the decimals: 0.11 < 0.80."
    first_delta = next(i for i, e in enumerate(events) if e.type == StreamEventType.DELTA)
    last_reasoning = max(i for i, e in enumerate(events) if e.type == StreamEventType.REASONING)
    assert last_reasoning < first_delta
    assert text_of(events) == "9.11 is smaller than 9.8."
    assert events[-2].usage.cached_input_tokens == 16
    assert events[-1].model == "deepseek-reasoner"


async def test_perplexity_citations_are_returned_with_the_answer() -> None:
    case = SONAR_CHAT_COMPLETIONS
    data = fixture_json("openai/perplexity_chat.json")
    fake = upstream_for(case, chat="openai/perplexity_chat.json")
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question(case.model))

    assert result.citations == data["citations"]


async def test_perplexity_search_results_stand_in_for_citations_when_only_they_are_sent() -> None:
    case = SONAR_CHAT_COMPLETIONS
    data = fixture_json("openai/perplexity_search_results_only.json")
    fake = upstream_for(case, chat="openai/perplexity_search_results_only.json")
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question(case.model))

    assert result.citations == [row["url"] for row in data["search_results"]]


async def test_perplexity_streams_end_with_citations_and_usage_on_the_done_event() -> None:
    case = SONAR_CHAT_COMPLETIONS
    fake = upstream_for(case, stream="openai/perplexity_stream.txt")
    async with fake.client() as client:
        events = await collect(OPENAI.stream(client, case.provider, question(case.model)))

    assert text_of(events) == "Paris is the capital of France [1][2]."
    assert events[-1].type == StreamEventType.DONE
    assert events[-1].citations == fixture_json("openai/perplexity_chat.json")["citations"]
    assert events[-2].usage.output_tokens == 11


async def test_an_answer_without_usage_gets_an_estimate_marked_as_such() -> None:
    case = BY_ID["huggingface"]
    data = fixture_json("openai/chat.json")
    del data["usage"]
    fake = FakeUpstream("openai", auth=case.auth)
    fake.route("POST", "/v1/chat/completions", json_reply(data))
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question(case.model))

    assert result.usage.estimated is True
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0


async def test_a_stream_without_usage_ends_with_an_estimated_usage_event() -> None:
    case = BY_ID["huggingface"]
    fake = upstream_for(case, stream="openai/stream_without_usage.txt")
    async with fake.client() as client:
        events = await collect(OPENAI.stream(client, case.provider, question(case.model)))

    usage = events[-2].usage
    assert events[-2].type == StreamEventType.USAGE
    assert usage.estimated is True
    assert usage.output_tokens > 0
    assert events[-1].finish_reason == "stop"


async def test_tool_calls_round_trip_through_a_plain_chat() -> None:
    case = BY_ID["openai"]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
    ]
    fake = upstream_for(case, chat="openai/chat_tool_calls.json")
    async with fake.client() as client:
        result = await OPENAI.chat(
            client, case.provider, question(case.model, messages=history, tools=[WEATHER_TOOL])
        )

    assert fake.last.body["messages"] == history
    assert result.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("call_Qx7hYb2", "get_weather", {"city": "Paris"})
    ]


async def test_streamed_tool_call_fragments_assemble_into_the_call() -> None:
    case = BY_ID["openai"]
    fake = upstream_for(case, stream="openai/stream_tool_calls.txt")
    async with fake.client() as client:
        events = await collect(
            OPENAI.stream(client, case.provider, question(case.model, tools=[WEATHER_TOOL]))
        )

    calls = tool_calls_of(events)
    assert calls[0]["id"] == "call_Qx7hYb2"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert events[-1].finish_reason == "tool_calls"


async def test_embeddings_come_back_in_input_order_with_usage() -> None:
    case = BY_ID["openai"]
    fake = FakeUpstream("openai", auth=case.auth)
    fake.route("POST", "/v1/embeddings", json_reply(fixture_json("openai/embeddings.json")))
    async with fake.client() as client:
        result = await OPENAI.embed(
            client, case.provider, "text-embedding-3-small", ["hello", "world"]
        )

    assert str(fake.last.url) == "https://api.openai.com/v1/embeddings"
    assert fake.last.body == {
        "model": "text-embedding-3-small",
        "input": ["hello", "world"],
        "encoding_format": "float",
    }
    assert result.vectors[1] == [0.5, -0.25, 0.125]
    assert len(result.vectors) == 2
    assert result.usage.input_tokens == 8
    assert result.usage.estimated is False


async def test_models_are_listed_from_the_models_endpoint() -> None:
    case = BY_ID["deepseek"]
    fake = FakeUpstream("openai", auth=case.auth)
    fake.route("GET", "/models", json_reply(fixture_json("openai/models.json")))
    async with fake.client() as client:
        models = await OPENAI.list_models(client, case.provider)

    assert str(fake.last.url) == "https://api.deepseek.com/models"
    assert models == ["gpt-4o-mini", "text-embedding-3-small"]


async def test_a_provider_without_a_models_endpoint_is_not_asked() -> None:
    case = SONAR_CHAT_COMPLETIONS
    fake = FakeUpstream("openai", auth=case.auth)
    async with fake.client() as client:
        assert await OPENAI.list_models(client, case.provider) == []

    assert fake.requests == []


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
    ],
)
async def test_finish_reasons_are_normalised(upstream: str, expected: str) -> None:
    case = BY_ID["mistral"]
    data = fixture_json("openai/chat.json")
    data["choices"][0]["finish_reason"] = upstream
    fake = FakeUpstream("openai", auth=case.auth)
    fake.route("POST", "/v1/chat/completions", json_reply(data))
    async with fake.client() as client:
        result = await OPENAI.chat(client, case.provider, question(case.model))

    assert result.finish_reason == expected
