"""The official openai SDK's `responses` API against a live gateway: string and item input,
instructions, function tools and a tool-result turn, json_schema output, streaming; nothing
stored; one usage record per request."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from tests.api.loopback import Reply
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather now in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}
EVENTS = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
def sdk():
    clients = []

    def make(gateway, key):
        clients.append(openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_string_input_with_instructions(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    raw = sdk(gateway, key).responses.with_raw_response.create(
        model="gpt-4o-mini", instructions="Be brief.", input="Say hello", store=False
    )
    response = raw.parse()
    assert response.output_text == "Hello from the upstream."
    assert response.status == "completed" and response.store is False
    assert response.id.startswith("resp_")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 6)
    assert response.usage.total_tokens == 18
    assert primary.requests[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert raw.headers["x-gateway-cost"] == "0.00000540"
    [record] = wait_for_usage(1)
    assert (record.endpoint, record.status, record.input_tokens, record.output_tokens) == (
        "responses",
        200,
        12,
        6,
    )


def test_function_call_then_function_call_output_turn(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    client = sdk(gateway, key)
    primary.then(primary.tool_call_reply("get_weather", '{"city": "Oslo"}', "call_oslo"))
    question = [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]}]
    first = client.responses.create(
        model="gpt-4o-mini", input=question, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    [call] = first.output
    assert (call.type, call.call_id, call.name) == ("function_call", "call_oslo", "get_weather")
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert primary.requests[-1]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["parameters"],
                "description": "The weather now in a city.",
                "strict": True,
            },
        }
    ]

    primary.then(Reply())
    second = client.responses.create(
        model="gpt-4o-mini",
        tools=[WEATHER_TOOL],
        input=[
            *question,
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": "call_oslo", "output": "4 °C, snow"},
        ],
    )
    assert second.output_text == "Hello from the upstream."
    assert primary.requests[-1]["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_oslo",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_oslo", "content": "4 °C, snow"},
    ]
    assert [r.endpoint for r in wait_for_usage(2)] == ["responses", "responses"]


def test_stream_sends_the_documented_events(gateway, key, upstreams, sdk):
    events = list(
        sdk(gateway, key).responses.create(model="gpt-4o-mini", input="Say hello", stream=True)
    )
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 1
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for event in events:  # every event is what the SDK's own types demand
        EVENTS.validate_python(event.model_dump(mode="json", exclude_unset=True))
    completed = events[-1].response
    assert completed.output_text == "Hello from the upstream."
    assert (completed.usage.input_tokens, completed.usage.output_tokens) == (12, 6)
    [record] = wait_for_usage(1)
    assert record.stream and record.endpoint == "responses" and record.output_tokens == 6


def test_streamed_function_call_arguments(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    primary.then(
        primary.tool_call_stream_reply(
            "get_weather", ['{"city":', ' "Oslo"}'], "call_s", text="Checking."
        )
    )
    events = list(
        sdk(gateway, key).responses.create(
            model="gpt-4o-mini", input="Weather in Oslo?", tools=[WEATHER_TOOL], stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds.index("response.output_item.done") < kinds.index(
        "response.function_call_arguments.delta"
    )  # the message item ends before the call starts
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert pieces == ['{"city":', ' "Oslo"}']
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == '{"city": "Oslo"}'
    final = events[-1].response
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert (final.output[1].call_id, final.output[1].name) == ("call_s", "get_weather")
    assert final.output_text == "Checking."
    wait_for_usage(1)


def test_json_schema_text_format_reaches_the_upstream(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    sdk(gateway, key).responses.create(
        model="gpt-4o-mini",
        input="A city, as JSON",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert primary.requests[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema, "strict": True},
    }
    wait_for_usage(1)


def test_previous_response_id_is_a_clear_400(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gateway, key).responses.create(
            model="gpt-4o-mini", input="And then?", previous_response_id="resp_123"
        )
    assert raised.value.body["param"] == "previous_response_id"
    assert "does not store responses" in raised.value.message
    assert primary.requests == []
    [record] = wait_for_usage(1)
    assert record.status == 400 and record.cost == 0


def test_non_function_tools_are_refused(gateway, key, upstreams, sdk):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gateway, key).responses.create(
            model="gpt-4o-mini", input="Hi", tools=[{"type": "web_search"}]
        )
    assert raised.value.body["param"] == "tools[0].type"
    wait_for_usage(1)


def test_the_sdks_stream_helper_assembles_the_response(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    primary.then(
        primary.tool_call_stream_reply("get_weather", ['{"city":', ' "Oslo"}'], "call_h", "Hm.")
    )
    with sdk(gateway, key).responses.stream(
        model="gpt-4o-mini", input="Weather in Oslo?", tools=[WEATHER_TOOL]
    ) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "Hm." == final.output_text
    call = final.output[1]
    assert (call.type, call.call_id, call.arguments) == (
        "function_call",
        "call_h",
        '{"city": "Oslo"}',
    )
    assert final.usage.total_tokens == 18
    wait_for_usage(1)


async def test_a_client_that_hangs_up_mid_stream_pays_for_what_was_produced(
    gateway, key, upstreams
):
    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)
    primary.then(Reply(chunks=chunks * 20, chunk_delay=0.05))
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/responses",
            json={"model": "gpt-4o-mini", "input": "Talk", "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        deltas = 0
        async for line in response.aiter_lines():
            deltas += line == "event: response.output_text.delta"
            if deltas == 3:
                break  # hang up mid-stream
    [record] = await asyncio.to_thread(wait_for_usage, 1)
    assert (record.endpoint, record.status) == ("responses", 499)
    assert record.client_disconnected and record.tokens_estimated
    assert 0 < record.output_tokens < 20 * 6
