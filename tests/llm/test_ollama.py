"""Ollama's native API: explicit stream flag, options, format, NDJSON streaming."""

from __future__ import annotations

import json

from llm.providers import get_dialect
from tests.llm.cases import BY_ID
from tests.llm.fakes import (
    WEATHER_TOOL,
    FakeUpstream,
    collect,
    fixture_json,
    json_reply,
    question,
    upstream_for,
)

OLLAMA = get_dialect("ollama")
CASE = BY_ID["ollama"]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def chat(request, fixture="ollama/chat.json"):
    fake = upstream_for(CASE, chat=fixture)
    async with fake.client() as client:
        result = await OLLAMA.chat(client, CASE.provider, request)
    return fake.last, result


async def test_a_plain_chat_says_stream_false_because_ollama_streams_by_default() -> None:
    sent, _ = await chat(question(CASE.model))

    assert sent.body["stream"] is False


async def test_sampling_options_go_under_options() -> None:
    sent, _ = await chat(question(CASE.model, top_p=0.5, stop=["\n"], seed=1))

    assert sent.body["options"] == {
        "num_predict": 50,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": ["\n"],
        "seed": 1,
    }


async def test_json_schema_output_sends_the_schema_as_format() -> None:
    sent, _ = await chat(
        question(
            CASE.model,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}},
        )
    )

    assert sent.body["format"] == SCHEMA


async def test_json_object_output_sends_format_json() -> None:
    sent, _ = await chat(question(CASE.model, response_format={"type": "json_object"}))

    assert sent.body["format"] == "json"


async def test_tool_calls_are_sent_with_object_arguments_and_parsed_back() -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "12C"},
    ]
    sent, result = await chat(
        question(CASE.model, messages=history, tools=[WEATHER_TOOL]), "ollama/tool_call.json"
    )

    assert sent.body["tools"] == [WEATHER_TOOL]
    assert sent.body["messages"][1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}
    ]
    assert sent.body["messages"][2]["tool_name"] == "get_weather"
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


async def test_a_cached_prompt_without_prompt_eval_count_gets_an_estimated_input() -> None:
    _, result = await chat(question(CASE.model), "ollama/chat_cached_prompt.json")

    assert result.usage.output_tokens == 3
    assert result.usage.input_tokens > 0
    assert result.usage.estimated is True
    assert result.finish_reason == "length"


async def test_a_stream_reports_the_local_model_that_answered() -> None:
    fake = upstream_for(CASE)
    async with fake.client() as client:
        events = await collect(OLLAMA.stream(client, CASE.provider, question(CASE.model)))

    assert events[-1].model == "llama3.2:latest"


async def test_texts_are_embedded_via_api_embed() -> None:
    fake = FakeUpstream("ollama")
    fake.route("POST", "/api/embed", json_reply(fixture_json("ollama/embed.json")))
    async with fake.client() as client:
        result = await OLLAMA.embed(client, CASE.provider, "all-minilm", ["a", "b"])

    assert fake.last.body == {"model": "all-minilm", "input": ["a", "b"]}
    assert result.vectors == fixture_json("ollama/embed.json")["embeddings"]
    assert result.usage.input_tokens == 8


async def test_local_models_are_listed_from_api_tags() -> None:
    fake = FakeUpstream("ollama")
    fake.route("GET", "/api/tags", json_reply(fixture_json("ollama/tags.json")))
    async with fake.client() as client:
        models = await OLLAMA.list_models(client, CASE.provider)

    assert models == ["llama3.2:latest", "all-minilm:latest"]
