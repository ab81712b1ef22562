"""Cohere v2 chat: messages, parameters, tool calls, usage and streaming events."""

from __future__ import annotations

import json

from llm.providers import get_dialect
from llm.types import StreamEventType
from tests.llm.cases import BY_ID
from tests.llm.fakes import (
    WEATHER_TOOL,
    FakeUpstream,
    collect,
    fixture_json,
    json_reply,
    question,
    tool_calls_of,
    upstream_for,
)

COHERE = get_dialect("cohere")
CASE = BY_ID["cohere"]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def chat(request, fixture="cohere/chat.json"):
    fake = upstream_for(CASE, chat=fixture)
    async with fake.client() as client:
        result = await COHERE.chat(client, CASE.provider, request)
    return fake.last, result


async def test_parameters_use_coheres_names() -> None:
    sent, _ = await chat(question(CASE.model, top_p=0.7, stop=["END"], seed=11))

    body = sent.body
    assert body["p"] == 0.7
    assert body["stop_sequences"] == ["END"]
    assert body["seed"] == 11
    assert body["stream"] is False
    assert "top_p" not in body and "stop" not in body


async def test_json_schema_output_is_a_json_object_format_carrying_the_schema() -> None:
    sent, _ = await chat(
        question(
            CASE.model,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}},
        )
    )

    assert sent.body["response_format"] == {"type": "json_object", "json_schema": SCHEMA}


async def test_json_object_output_is_passed_without_a_schema() -> None:
    sent, _ = await chat(question(CASE.model, response_format={"type": "json_object"}))

    assert sent.body["response_format"] == {"type": "json_object"}


async def test_tool_history_and_tools_are_sent_in_v2_shape() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "get_weather_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "get_weather_1", "content": "18C"},
    ]
    sent, _ = await chat(
        question(CASE.model, messages=history, tools=[WEATHER_TOOL], tool_choice="required")
    )

    body = sent.body
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "REQUIRED"
    assert body["messages"][1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "get_weather_1",
        "content": "18C",
    }


async def test_a_tool_call_answer_becomes_tool_calls_with_the_plan_as_reasoning() -> None:
    _, result = await chat(question(CASE.model, tools=[WEATHER_TOOL]), "cohere/tool_call.json")

    assert result.finish_reason == "tool_calls"
    assert result.reasoning == "I will look up the weather in Paris."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather_1byjy32y4hvq", "get_weather", {"city": "Paris"})
    ]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (913, 81)


async def test_streamed_tool_call_events_assemble_into_the_call() -> None:
    fake = upstream_for(CASE, stream="cohere/stream_tool_call.txt")
    async with fake.client() as client:
        events = await collect(
            COHERE.stream(client, CASE.provider, question(CASE.model, tools=[WEATHER_TOOL]))
        )

    calls = tool_calls_of(events)
    assert calls[0]["id"] == "get_weather_1byjy32y4hvq"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    plan = "".join(e.text for e in events if e.type == StreamEventType.REASONING)
    assert plan == "I will look up the weather."
    assert events[-1].finish_reason == "tool_calls"


async def test_billed_units_stand_in_when_token_counts_are_absent() -> None:
    _, result = await chat(question(CASE.model), "cohere/chat_billed_only.json")

    assert (result.usage.input_tokens, result.usage.output_tokens) == (8, 2)
    assert result.finish_reason == "length"


async def test_texts_are_embedded_as_floats_via_v2_embed() -> None:
    fake = FakeUpstream("cohere", auth=CASE.auth)
    fake.route("POST", "/v2/embed", json_reply(fixture_json("cohere/embed.json")))
    async with fake.client() as client:
        result = await COHERE.embed(client, CASE.provider, "embed-v4.0", ["hello", "goodbye"])

    assert fake.last.body == {
        "model": "embed-v4.0",
        "texts": ["hello", "goodbye"],
        "embedding_types": ["float"],
        "input_type": "search_document",
    }
    assert result.vectors == fixture_json("cohere/embed.json")["embeddings"]["float"]
    assert result.usage.input_tokens == 2


async def test_models_are_listed_from_v1_models() -> None:
    fake = FakeUpstream("cohere", auth=CASE.auth)
    fake.route("GET", "/v1/models", json_reply(fixture_json("cohere/models.json")))
    async with fake.client() as client:
        models = await COHERE.list_models(client, CASE.provider)

    assert models == ["command-a-03-2025", "embed-v4.0"]
