"""The official anthropic SDK against a live gateway: /v1/messages (plain, streamed, with tools)
and /v1/messages/count_tokens, routed to an OpenAI-dialect upstream, so every request is
translated both ways; one usage record per request."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from analytics.models import UsageRecord
from tests.api.loopback import Reply
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather now in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def claude():
    clients = []

    def make(gateway, key):
        clients.append(anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_message_with_system_and_multi_part_content(gateway, key, upstreams, claude):
    primary, _ = upstreams
    raw = claude(gateway, key).messages.with_raw_response.create(
        model="gpt-4o-mini",
        max_tokens=200,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hello"}],
            }
        ],
        metadata={"user_id": "dev-7"},
        extra_body={"temperature": 0.5},  # older clients send it; the current SDK has no field
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello from the upstream.")]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 6)
    assert message.id.startswith("msg_")
    sent = primary.requests[-1]
    assert sent["model"] == "gpt-4o-mini-2024-07-18"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say\n\nhello"},
    ]
    assert (sent["max_tokens"], sent["temperature"], sent["user"]) == (200, 0.5, "dev-7")
    assert raw.headers["x-gateway-cost"] == "0.00000540"
    [record] = wait_for_usage(1)
    assert (record.endpoint, record.status, record.input_tokens, record.output_tokens) == (
        "messages",
        200,
        12,
        6,
    )
    assert str(record.cost) == "0.00000540"


def test_tool_use_then_tool_result_turn(gateway, key, upstreams, claude, tmp_path):
    """The exchange a coding agent has: tools offered, a tool_use block back, the tool's result
    sent in the next turn, the final text. The transcript is kept in tmp_path."""
    primary, _ = upstreams
    client = claude(gateway, key)
    primary.then(primary.tool_call_reply("get_weather", '{"city": "Oslo"}', "call_oslo"))
    first_request = {
        "model": "gpt-4o-mini",
        "max_tokens": 512,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
    }
    first = client.messages.create(**first_request)
    assert first.stop_reason == "tool_use"
    [tool_use] = first.content
    assert (tool_use.type, tool_use.id, tool_use.name) == ("tool_use", "call_oslo", "get_weather")
    assert tool_use.input == {"city": "Oslo"}
    offered = primary.requests[-1]
    assert offered["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "The weather now in a city.",
            },
        }
    ]
    assert offered["tool_choice"] == "auto"

    primary.then(Reply())  # the final answer, text
    second_request = {
        **first_request,
        "messages": [
            *first_request["messages"],
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_oslo",
                        "content": [{"type": "text", "text": "4 °C, light snow"}],
                    }
                ],
            },
        ],
    }
    second = client.messages.create(**second_request)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Hello from the upstream."
    assert primary.requests[-1]["messages"][1:] == [
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
        {"role": "tool", "tool_call_id": "call_oslo", "content": "4 °C, light snow"},
    ]
    records = wait_for_usage(2)
    assert [(r.endpoint, r.status) for r in records] == [("messages", 200), ("messages", 200)]
    transcript = [
        {"request": first_request, "response": first.model_dump(mode="json")},
        {"request": second_request, "response": second.model_dump(mode="json")},
    ]
    (tmp_path / "claude_code_tool_use.json").write_text(json.dumps(transcript, indent=2))


def test_stream_sends_anthropics_event_sequence_with_usage(gateway, key, upstreams, claude):
    stream = claude(gateway, key).messages.create(
        model="gpt-4o-mini",
        max_tokens=100,
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    deltas = [e for e in events if e.type == "content_block_delta"]
    # The SDK drops pings; the raw sequence is checked below.
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * len(deltas),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(d.delta.text for d in deltas) == "Hello from the upstream."
    message_delta = events[-2]
    assert message_delta.delta.stop_reason == "end_turn"
    assert (message_delta.usage.input_tokens, message_delta.usage.output_tokens) == (12, 6)
    [record] = wait_for_usage(1)
    assert record.stream and record.endpoint == "messages"
    assert (record.input_tokens, record.output_tokens) == (12, 6)


def test_raw_stream_has_event_names_and_a_ping(gateway, key, upstreams):
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("event: ")]
    names = [line.removeprefix("event: ") for line in lines]
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    wait_for_usage(1)


def test_streamed_tool_use_through_the_sdk_helper(gateway, key, upstreams, claude):
    primary, _ = upstreams
    primary.then(
        primary.tool_call_stream_reply(
            "get_weather", ['{"city":', ' "Oslo"}'], "call_s", text="Let me check."
        )
    )
    with claude(gateway, key).messages.stream(
        model="gpt-4o-mini",
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Let me check."
    assert [b.type for b in message.content] == ["text", "tool_use"]
    tool_use = message.content[1]
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        "call_s",
        "get_weather",
        {"city": "Oslo"},
    )
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 6
    [record] = wait_for_usage(1)
    assert record.stream and record.output_tokens == 6


def test_count_tokens_estimates_without_calling_a_provider(gateway, key, upstreams, claude):
    primary, _ = upstreams
    client = claude(gateway, key)
    short = client.messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    longer = client.messages.count_tokens(
        model="gpt-4o-mini",
        system="You are a careful assistant.",
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Oslo today? " * 20}],
    )
    assert 0 < short.input_tokens < longer.input_tokens
    assert primary.requests == []
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="gpt-9", messages=[{"role": "user", "content": "Hi"}])
    assert UsageRecord.objects.count() == 0


def test_errors_come_in_anthropics_shape(gateway, key, upstreams, claude):
    with pytest.raises(anthropic.AuthenticationError) as raised:
        claude(gateway, "gw-nothing_here").messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.NotFoundError) as raised:
        claude(gateway, key).messages.create(
            model="gpt-9", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.body["error"]["type"] == "not_found_error"
    assert "gpt-4o-mini" in raised.value.body["error"]["message"]

    response = httpx.post(
        f"{gateway}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: Field required (a positive integer).",
        },
    }
    # Each request that got past authentication left its record (the bad key has no tenant).
    records = wait_for_usage(2)
    assert sorted(r.status for r in records) == [400, 404]


def test_server_tools_are_refused_by_name(gateway, key, upstreams, claude):
    primary, _ = upstreams
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude(gateway, key).messages.create(
            model="gpt-4o-mini",
            max_tokens=10,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert "tools.0.type" in raised.value.body["error"]["message"]
    assert primary.requests == []


def test_upstream_failure_is_an_api_error_naming_the_providers(gateway, key, upstreams, claude):
    primary, backup = upstreams
    primary.then(Reply(status=500), Reply(status=500))
    backup.then(Reply(status=500), Reply(status=500))
    with pytest.raises(anthropic.APIStatusError) as raised:
        claude(gateway, key).messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.status_code == 502
    assert raised.value.body["error"]["type"] == "api_error"
    assert "openai" in raised.value.body["error"]["message"]
    [record] = wait_for_usage(1)
    assert record.status == 502 and record.cost == 0


def test_cache_hit_answers_again_for_nothing(gateway, key, upstreams, claude):
    primary, _ = upstreams
    client = claude(gateway, key)
    ask = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Say hello"}],
        "extra_body": {"cache": True},
    }
    first = client.messages.with_raw_response.create(**ask)
    second = client.messages.with_raw_response.create(**ask)
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("MISS", "HIT")
    assert second.parse().content[0].text == "Hello from the upstream."
    assert len(primary.requests) == 1
    records = wait_for_usage(2)
    assert [(r.cache_hit, r.cost) for r in records] == [
        (False, Decimal("0.00000540")),
        (True, 0),
    ]


def test_free_plan_refuses_a_reservation_beyond_its_minute(gateway, key, upstreams, claude):
    """The worst case (prompt + max_tokens) is reserved up front: on the Free plan's 20,000
    tokens a minute a large max_tokens is a 429 (hence CLAUDE_CODE_MAX_OUTPUT_TOKENS in the
    README)."""
    primary, _ = upstreams
    with pytest.raises(anthropic.RateLimitError) as raised:
        claude(gateway, key).messages.create(
            model="gpt-4o-mini",
            max_tokens=16000,
            messages=[{"role": "user", "content": "word " * 4000}],
            stream=True,
        )
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert primary.requests == []
    [record] = wait_for_usage(1)
    assert record.status == 429
