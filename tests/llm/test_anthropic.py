"""Anthropic Messages API: translation both ways, tool use, the structured-output tool trick."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llm.providers import get_dialect
from llm.types import ErrorKind, ProviderError, StreamEventType
from tests.llm.cases import BY_ID
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

ANTHROPIC = get_dialect("anthropic")
CASE = BY_ID["anthropic"]
CITY_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "city_facts",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["city", "population"],
        },
    },
}
TOOL_HISTORY = [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "Weather in Paris and Lyon?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            {
                "id": "toolu_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "toolu_b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_a", "content": "18C"},
    {"role": "tool", "tool_call_id": "toolu_b", "content": "21C"},
]


async def chat(request, fixture="anthropic/message.json", provider=CASE.provider):
    fake = upstream_for(CASE, chat=fixture)
    async with fake.client() as client:
        result = await ANTHROPIC.chat(client, provider, request)
    return fake.last, result


async def test_requests_carry_the_key_and_api_version_headers() -> None:
    sent, _ = await chat(question(CASE.model))

    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers


async def test_system_messages_are_lifted_out_of_the_conversation() -> None:
    sent, _ = await chat(question(CASE.model))

    assert sent.body["system"] == "Answer in one sentence."
    assert [m["role"] for m in sent.body["messages"]] == ["user"]


async def test_max_tokens_defaults_when_the_request_sets_none() -> None:
    sent, _ = await chat(question(CASE.model, max_tokens=None))
    assert sent.body["max_tokens"] == 4096

    provider = replace(CASE.provider, quirks={"default_max_tokens": 1024})
    sent, _ = await chat(question(CASE.model, max_tokens=None), provider=provider)
    assert sent.body["max_tokens"] == 1024


async def test_openai_temperature_above_one_is_clamped_to_anthropics_range() -> None:
    sent, _ = await chat(question(CASE.model, temperature=1.7))

    assert sent.body["temperature"] == 1.0


async def test_stop_and_user_are_renamed_to_anthropics_fields() -> None:
    sent, _ = await chat(question(CASE.model, stop=["END"], user="tenant-9"))

    assert sent.body["stop_sequences"] == ["END"]
    assert sent.body["metadata"] == {"user_id": "tenant-9"}


async def test_tool_history_becomes_tool_use_and_merged_tool_result_blocks() -> None:
    sent, _ = await chat(
        question(CASE.model, messages=TOOL_HISTORY, tools=[WEATHER_TOOL], tool_choice="required")
    )

    body = sent.body
    assert body["system"] == "Be terse."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "text", "text": "Checking both."}
    assert assistant[1] == {
        "type": "tool_use",
        "id": "toolu_a",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    results = body["messages"][2]["content"]
    assert results == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "21C"},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_tool_choice_is_translated(choice: object, expected: dict) -> None:
    sent, _ = await chat(question(CASE.model, tools=[WEATHER_TOOL], tool_choice=choice))

    assert sent.body["tool_choice"] == expected


async def test_a_tool_use_answer_becomes_tool_calls() -> None:
    _, result = await chat(question(CASE.model, tools=[WEATHER_TOOL]), "anthropic/tool_use.json")

    assert result.finish_reason == "tool_calls"
    assert result.text == "I'll look up the weather in Paris."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"})
    ]


async def test_a_streamed_tool_use_yields_the_call_and_its_argument_fragments() -> None:
    fake = upstream_for(CASE, stream="anthropic/stream_tool_use.txt")
    async with fake.client() as client:
        events = await collect(
            ANTHROPIC.stream(client, CASE.provider, question(CASE.model, tools=[WEATHER_TOOL]))
        )

    calls = tool_calls_of(events)
    assert list(calls) == [0]
    assert calls[0]["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert text_of(events) == "I'll look up the weather in Paris."
    assert events[-1].finish_reason == "tool_calls"
    assert events[-2].usage.input_tokens == 384
    assert events[-2].usage.output_tokens == 58


async def test_json_schema_output_forces_a_single_tool_carrying_the_schema() -> None:
    sent, result = await chat(
        question(CASE.model, response_format=CITY_SCHEMA), "anthropic/structured.json"
    )

    assert sent.body["tools"] == [
        {
            "name": "city_facts",
            "description": "Reply with the structured answer.",
            "input_schema": CITY_SCHEMA["json_schema"]["schema"],
        }
    ]
    assert sent.body["tool_choice"] == {"type": "tool", "name": "city_facts"}
    assert json.loads(result.text) == {"city": "Paris", "population": 2102650}
    assert result.tool_calls == []
    assert result.finish_reason == "stop"


async def test_streamed_structured_output_arrives_as_text_deltas() -> None:
    fake = upstream_for(CASE, stream="anthropic/stream_structured.txt")
    async with fake.client() as client:
        events = await collect(
            ANTHROPIC.stream(
                client, CASE.provider, question(CASE.model, response_format=CITY_SCHEMA)
            )
        )

    assert json.loads(text_of(events)) == {"city": "Paris", "population": 2102650}
    assert not [e for e in events if e.type == StreamEventType.TOOL_CALL]
    assert events[-1].finish_reason == "stop"


async def test_prompt_cache_reads_and_writes_count_as_input_and_reads_as_cached() -> None:
    _, result = await chat(question(CASE.model), "anthropic/message_cached.json")

    assert result.usage.input_tokens == 21 + 188 + 1500
    assert result.usage.cached_input_tokens == 1500
    assert result.usage.output_tokens == 393
    assert result.finish_reason == "length"


async def test_a_stream_reports_the_answering_model() -> None:
    fake = upstream_for(CASE)
    async with fake.client() as client:
        events = await collect(ANTHROPIC.stream(client, CASE.provider, question(CASE.model)))

    assert events[-1].model == fixture_json("anthropic/message.json")["model"]


async def test_models_are_listed_from_v1_models() -> None:
    fake = FakeUpstream("anthropic", auth=CASE.auth)
    fake.route("GET", "/v1/models", json_reply(fixture_json("anthropic/models.json")))
    async with fake.client() as client:
        models = await ANTHROPIC.list_models(client, CASE.provider)

    assert models == ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
    assert fake.last.headers["anthropic-version"] == "2023-06-01"


async def test_embeddings_are_refused_as_a_bad_request_without_a_network_call() -> None:
    fake = FakeUpstream("anthropic", auth=CASE.auth)
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await ANTHROPIC.embed(client, CASE.provider, "any", ["text"])

    assert caught.value.kind == ErrorKind.BAD_REQUEST
    assert fake.requests == []
