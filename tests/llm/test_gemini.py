"""Gemini generateContent: contents/parts, generation config, function calling, usage."""

from __future__ import annotations

import json
from dataclasses import replace

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

GEMINI = get_dialect("gemini")
CASE = BY_ID["gemini"]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}}


async def chat(request, fixture="gemini/generate.json", provider=CASE.provider):
    fake = upstream_for(CASE, chat=fixture)
    async with fake.client() as client:
        result = await GEMINI.chat(client, provider, request)
    return fake.last, result


async def test_the_key_travels_in_the_goog_header_not_the_url() -> None:
    sent, _ = await chat(question(CASE.model))

    assert sent.headers["x-goog-api-key"] == "AIza-test-key"
    assert "key=" not in str(sent.url)


async def test_roles_become_user_and_model_and_options_go_to_generation_config() -> None:
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
    ]
    sent, _ = await chat(question(CASE.model, messages=messages, top_p=0.8, stop=["."], seed=3))

    body = sent.body
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "Capital of France?"}]},
    ]
    assert body["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.8,
        "stopSequences": ["."],
        "seed": 3,
    }


async def test_a_model_given_with_its_models_prefix_is_not_doubled() -> None:
    sent, _ = await chat(question("models/gemini-2.5-flash"))

    assert sent.url.path == "/v1beta/models/gemini-2.5-flash:generateContent"


async def test_json_schema_output_asks_for_json_with_the_schema() -> None:
    sent, _ = await chat(question(CASE.model, response_format=JSON_SCHEMA_FORMAT))

    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA


async def test_the_schema_field_quirk_sends_the_openapi_style_response_schema() -> None:
    provider = replace(CASE.provider, quirks={"schema_field": "responseSchema"})
    sent, _ = await chat(
        question(CASE.model, response_format=JSON_SCHEMA_FORMAT), provider=provider
    )

    config = sent.body["generationConfig"]
    assert config["responseSchema"] == SCHEMA
    assert "responseJsonSchema" not in config


async def test_json_object_output_only_sets_the_mime_type() -> None:
    sent, _ = await chat(question(CASE.model, response_format={"type": "json_object"}))

    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert not {"responseSchema", "responseJsonSchema"} & set(config)


async def test_tools_become_function_declarations_and_history_function_parts() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "18C"},
    ]
    sent, _ = await chat(
        question(
            CASE.model,
            messages=history,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )

    body = sent.body
    function = WEATHER_TOOL["function"]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": function["name"],
                    "description": function["description"],
                    "parametersJsonSchema": function["parameters"],
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}}],
    }


async def test_a_function_call_answer_becomes_a_tool_call() -> None:
    _, result = await chat(question(CASE.model, tools=[WEATHER_TOOL]), "gemini/function_call.json")

    assert result.finish_reason == "tool_calls"
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.id


async def test_a_streamed_function_call_arrives_whole() -> None:
    fake = upstream_for(CASE, stream="gemini/stream_function_call.txt")
    async with fake.client() as client:
        events = await collect(
            GEMINI.stream(client, CASE.provider, question(CASE.model, tools=[WEATHER_TOOL]))
        )

    calls = tool_calls_of(events)
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert events[-1].finish_reason == "tool_calls"


async def test_thinking_counts_as_output_and_cached_content_is_reported() -> None:
    _, result = await chat(question(CASE.model), "gemini/generate_thinking_cached.json")

    assert result.text == "9.8 is larger."
    assert result.reasoning == "Weighing the two numbers."
    assert result.usage.input_tokens == 4120
    assert result.usage.output_tokens == 5 + 90
    assert result.usage.cached_input_tokens == 4096
    assert result.finish_reason == "length"
    assert result.model == "gemini-2.5-pro"


async def test_a_blocked_prompt_finishes_with_content_filter() -> None:
    _, result = await chat(question(CASE.model), "gemini/generate_blocked.json")

    assert result.finish_reason == "content_filter"
    assert result.text == ""


async def test_streaming_uses_the_sse_variant_of_stream_generate_content() -> None:
    fake = upstream_for(CASE)
    async with fake.client() as client:
        events = await collect(GEMINI.stream(client, CASE.provider, question(CASE.model)))

    assert fake.last.url.params["alt"] == "sse"
    assert fake.last.url.path.endswith(":streamGenerateContent")
    assert events[-1].type == StreamEventType.DONE
    assert events[-1].model == "gemini-2.5-flash"


async def test_one_text_is_embedded_with_embed_content() -> None:
    fake = FakeUpstream("gemini", auth=CASE.auth)
    fake.route(
        "POST",
        "/v1beta/models/gemini-embedding-001:embedContent",
        json_reply(fixture_json("gemini/embed.json")),
    )
    async with fake.client() as client:
        result = await GEMINI.embed(client, CASE.provider, "gemini-embedding-001", ["hello"])

    assert fake.last.body == {"content": {"parts": [{"text": "hello"}]}}
    assert result.vectors == [fixture_json("gemini/embed.json")["embedding"]["values"]]
    assert result.usage.estimated is True


async def test_several_texts_are_embedded_with_batch_embed_contents() -> None:
    fake = FakeUpstream("gemini", auth=CASE.auth)
    fake.route(
        "POST",
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        json_reply(fixture_json("gemini/batch_embed.json")),
    )
    async with fake.client() as client:
        result = await GEMINI.embed(client, CASE.provider, "gemini-embedding-001", ["a", "b"])

    assert fake.last.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert result.vectors == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]


async def test_models_are_listed_without_their_models_prefix() -> None:
    fake = FakeUpstream("gemini", auth=CASE.auth)
    fake.route("GET", "/v1beta/models", json_reply(fixture_json("gemini/models.json")))
    async with fake.client() as client:
        models = await GEMINI.list_models(client, CASE.provider)

    assert models == ["gemini-2.5-flash", "gemini-embedding-001"]
