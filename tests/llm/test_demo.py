"""The demo dialect answers offline, deterministically, and says it is a demo."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from llm.http import build_client
from llm.providers import get_dialect
from llm.types import ChatRequest, ProviderConfig, StreamEventType
from tests.llm.fakes import WEATHER_TOOL, collect, text_of

DEMO = get_dialect("demo")
PROVIDER = ProviderConfig(id="demo", name="Demo", dialect="demo", base_url="", requires_key=False)
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "population": {"type": "integer", "minimum": 1},
        "capital": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "size": {"enum": ["small", "large"]},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
    },
    "required": ["city", "population", "capital", "tags", "size", "where"],
    "additionalProperties": False,
}


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the demo dialect made a request to {request.url}")


@pytest.fixture
async def client():
    async with build_client(transport=httpx.MockTransport(no_network)) as client:
        yield client


def ask(text: str, **fields) -> ChatRequest:
    return ChatRequest(model="demo-chat", messages=[{"role": "user", "content": text}], **fields)


async def test_the_answer_is_marked_as_a_demo_and_echoes_the_question(client) -> None:
    result = await DEMO.chat(client, PROVIDER, ask("What is the capital of France?"))

    assert result.text.startswith("[demo]")
    assert "What is the capital of France?" in result.text
    assert result.finish_reason == "stop"
    assert result.provider == "demo"


async def test_the_same_question_gets_the_same_answer_and_counts(client) -> None:
    first = await DEMO.chat(client, PROVIDER, ask("Tell me about Lyon"))
    second = await DEMO.chat(client, PROVIDER, ask("Tell me about Lyon"))
    other = await DEMO.chat(client, PROVIDER, ask("Tell me about Marseille please"))

    assert (first.text, first.usage) == (second.text, second.usage)
    assert other.text != first.text


async def test_usage_comes_from_the_estimator_and_says_so(client) -> None:
    result = await DEMO.chat(client, PROVIDER, ask("one two three four five six"))

    assert result.usage.estimated is True
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0


async def test_long_questions_are_summarised(client) -> None:
    question = " ".join(f"word{i}" for i in range(40))
    result = await DEMO.chat(client, PROVIDER, ask(question))

    assert "word11" in result.text
    assert "word12" not in result.text
    assert result.text.endswith("...")


async def test_the_stream_spells_out_the_same_answer_word_by_word(client) -> None:
    request = ask("Stream this answer please")
    result = await DEMO.chat(client, PROVIDER, request)
    events = await collect(DEMO.stream(client, PROVIDER, request))

    deltas = [e for e in events if e.type == StreamEventType.DELTA]
    assert len(deltas) == len(result.text.split(" "))
    assert text_of(events) == result.text
    assert [e.type for e in events[-2:]] == [StreamEventType.USAGE, StreamEventType.DONE]
    assert events[-2].usage == result.usage


async def test_json_schema_output_is_an_object_the_schema_accepts(client) -> None:
    request = ask(
        "facts",
        response_format={"type": "json_schema", "json_schema": {"name": "f", "schema": SCHEMA}},
    )
    result = await DEMO.chat(client, PROVIDER, request)

    jsonschema.validate(json.loads(result.text), SCHEMA)


async def test_json_object_output_is_valid_json(client) -> None:
    result = await DEMO.chat(client, PROVIDER, ask("hi", response_format={"type": "json_object"}))

    assert json.loads(result.text)["demo"] is True


async def test_a_required_tool_is_called_with_arguments_its_schema_accepts(client) -> None:
    result = await DEMO.chat(
        client, PROVIDER, ask("weather?", tools=[WEATHER_TOOL], tool_choice="required")
    )

    assert result.finish_reason == "tool_calls"
    call = result.tool_calls[0]
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER_TOOL["function"]["parameters"])


async def test_embeddings_are_deterministic_unit_vectors(client) -> None:
    first = await DEMO.embed(client, PROVIDER, "demo-embed", ["alpha", "beta"])
    again = await DEMO.embed(client, PROVIDER, "demo-embed", ["alpha"])

    assert first.vectors[0] == again.vectors[0]
    assert first.vectors[0] != first.vectors[1]
    for vector in first.vectors:
        assert abs(sum(x * x for x in vector) - 1.0) < 1e-9


async def test_the_demo_lists_its_models_without_a_network(client) -> None:
    assert await DEMO.list_models(client, PROVIDER) == ["demo-chat"]
