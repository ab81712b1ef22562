"""The two ingress translators on their own: Anthropic Messages and OpenAI Responses requests
into the internal chat request, and normalised stream events into each wire format."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llm.api import (
    anthropic_messages,
    anthropic_replies,
    openai_response_objects,
    openai_responses,
)
from llm.api.errors import ApiError
from llm.types import StreamEvent, StreamEventType, Usage

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def messages_request(**fields):
    return {"model": "m", "max_tokens": 10, **fields}


def test_anthropic_images_tool_errors_and_thinking_translate():
    parsed = anthropic_messages.parse_messages(
        messages_request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image", "source": PNG},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "Let me look."},
                        {"type": "tool_use", "id": "t1", "name": "view", "input": {"p": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "no such file"},
                                {"type": "image", "source": {"type": "url", "url": "https://x/y"}},
                            ],
                        }
                    ],
                },
            ],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
            tools=[{"name": "view", "input_schema": {"type": "object"}}],
        )
    )
    request = parsed.request
    assert request.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "view", "arguments": '{"p": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "Error: no such file"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]},
    ]
    assert request.tool_choice == "required"
    assert request.extra == {"parallel_tool_calls": False}


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"max_tokens": None}, "max_tokens", "Field required"),
        ({"mcp_servers": []}, "mcp_servers", "not supported"),
        ({"frequency_penalty": 1}, "frequency_penalty", "Extra inputs"),
        ({"temperature": 1.5}, "temperature", "0 to 1"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.0.content.0.type",
            "not supported",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role", "user"),
    ],
)
def test_anthropic_refusals_name_the_field(fields, param, words):
    body = messages_request(**{"messages": [{"role": "user", "content": "Hi"}], **fields})
    with pytest.raises(ApiError) as raised:
        anthropic_messages.parse_messages({k: v for k, v in body.items() if v is not None})
    assert raised.value.status == 400 and raised.value.param == param
    assert words in raised.value.message
    assert raised.value.body("anthropic")["error"]["type"] == "invalid_request_error"


def test_anthropic_output_config_becomes_a_json_schema_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    parsed = anthropic_messages.parse_messages(
        messages_request(
            messages=[{"role": "user", "content": "Hi"}],
            output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
        )
    )
    assert parsed.request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def events_of(raw: bytes) -> list[tuple[str, dict]]:
    frames = raw.decode().strip().split("\n\n")
    return [
        (frame.split("\n")[0][7:], json.loads(frame.split("\n")[1][6:]))
        for frame in frames
        if frame
    ]


def test_anthropic_stream_gives_each_text_and_tool_call_its_block():
    writer = anthropic_replies.MessageStreamWriter(request_id="req_1", model="m", input_tokens=5)
    raw = writer.opening()
    for event in [
        StreamEvent(StreamEventType.DELTA, text="Hi."),
        StreamEvent(StreamEventType.TOOL_CALL, tool_call_index=0, tool_call_id="a", tool_name="f"),
        StreamEvent(StreamEventType.TOOL_CALL, tool_call_index=0, text='{"x":1}'),
        StreamEvent(StreamEventType.TOOL_CALL, tool_call_index=1, tool_call_id="b", tool_name="g"),
        StreamEvent(StreamEventType.DONE, finish_reason="tool_calls"),
    ]:
        raw += writer.event(event) or b""
    raw += writer.closing(Usage(input_tokens=9, output_tokens=4, cached_input_tokens=3), 0)
    events = events_of(raw)
    assert [(name, data.get("index")) for name, data in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    usage = events[-2][1]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (6, 3)


def test_anthropic_stream_that_broke_ends_with_an_error_event_only():
    writer = anthropic_replies.MessageStreamWriter(request_id="req_1", model="m", input_tokens=5)
    writer.event(StreamEvent(StreamEventType.DELTA, text="Hi"))
    error = events_of(writer.error("the upstream stream broke", "upstream_connection", "groq"))
    assert error == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "api_error", "message": "the upstream stream broke (groq)"},
            },
        )
    ]
    assert writer.closing(Usage(), 0) == b""


def test_responses_items_translate_into_chat_messages():
    parsed = openai_responses.parse_responses(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"type": "message", "role": "developer", "content": "Use tools."},
                {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": "two"},
            ],
            "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "max_output_tokens": 64,
            "store": True,
            "reasoning": {"effort": "low"},
        }
    )
    request = parsed.request
    assert [m["role"] for m in request.messages] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    assert request.messages[3]["content"] == "Checking."
    assert [c["id"] for c in request.messages[3]["tool_calls"]] == ["c1", "c2"]
    assert request.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert request.response_format == {"type": "json_object"}
    assert request.max_tokens == 64


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
        ({"input": [{"type": "local_shell_call", "id": "x"}]}, "input[0].type"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"text": {"format": {"type": "json_schema"}}}, "text.format"),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c1",
                        "output": [{"type": "input_image", "image_url": "https://x/y.png"}],
                    }
                ]
            },
            "input[0].output",
        ),
    ],
)
def test_responses_refusals_name_the_parameter(fields, param):
    with pytest.raises(ApiError) as raised:
        openai_responses.parse_responses({"model": "m", "input": "Hi", **fields})
    assert raised.value.status == 400 and raised.value.param == param


def test_responses_stream_cut_short_by_length_is_incomplete():
    shape = openai_response_objects.ResponseShape({"model": "m", "input": "Hi"}, "req_abc", "m")
    writer = openai_response_objects.ResponseStreamWriter(shape)
    raw = writer.opening()
    raw += writer.event(StreamEvent(StreamEventType.DELTA, text="Once upon"))
    writer.event(StreamEvent(StreamEventType.DONE, finish_reason="length"))
    raw += writer.closing(Usage(input_tokens=3, output_tokens=2), 0)
    name, last = events_of(raw)[-1]
    assert name == "response.incomplete"
    response = last["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "Once upon"
    assert response["store"] is False


WORDS = st.sampled_from(
    ["user", "assistant", "system", "text", "image", "tool_use", "tool_result", "base64", "url"]
    + ["function", "function_call", "function_call_output", "message", "input_text"]
    + ["input_image", "output_text", "json_schema", "json_object", "auto", "any", "tool", ""]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | WORDS | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["type", "role", "content", "text", "source", "tool_use_id", "id", "name", "input"]
                + ["call_id", "arguments", "output", "image_url", "format", "schema", "data"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


SOME = JSON | WORDS
BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "doc"])},
    optional={
        "text": SOME,
        "source": SOME | st.fixed_dictionaries({"type": WORDS, "url": WORDS, "data": WORDS}),
        "tool_use_id": SOME,
        "id": SOME,
        "name": SOME,
        "input": SOME,
        "is_error": st.booleans(),
        "content": SOME | st.lists(st.fixed_dictionaries({"type": WORDS, "text": SOME})),
    },
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": st.text(max_size=3) | st.lists(BLOCK, max_size=3),
    }
)
PART = st.fixed_dictionaries(
    {"type": WORDS}, optional={"text": SOME, "image_url": SOME, "refusal": SOME}
)
ITEM = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning"])},
    optional={
        "role": WORDS,
        "content": SOME | st.lists(PART, max_size=3),
        "call_id": SOME,
        "name": SOME,
        "arguments": SOME,
        "output": SOME | st.lists(PART, max_size=2),
    },
)


@settings(max_examples=500, deadline=None)
@given(messages=st.lists(MESSAGE, max_size=4) | JSON, tools=JSON, choice=JSON, system=SOME)
@example(  # an unhashable type
    messages=[{"role": "user", "content": "Hi"}],
    tools=[{"name": "f", "input_schema": {"type": "object"}}],
    choice={"type": []},
    system=None,
)
def test_any_messages_body_is_parsed_or_refused_with_a_400(messages, tools, choice, system):
    body = {"model": "m", "max_tokens": 5, "messages": messages, "system": system}
    body |= {"tools": tools, "tool_choice": choice}
    try:
        anthropic_messages.parse_messages(body)
    except ApiError as error:
        assert error.status == 400


@settings(max_examples=500, deadline=None)
@given(items=st.lists(ITEM, max_size=4) | SOME, tools=JSON, choice=JSON, text=JSON)
def test_any_responses_body_is_parsed_or_refused_with_a_400(items, tools, choice, text):
    body = {"model": "m", "input": items, "tools": tools, "tool_choice": choice, "text": text}
    try:
        openai_responses.parse_responses(body)
    except ApiError as error:
        assert error.status == 400
