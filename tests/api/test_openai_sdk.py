"""The official openai SDK, sync and async, streamed and not, against a live gateway."""

from __future__ import annotations

import openai
import pytest

from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def sdk():
    clients = []

    def make(gateway, key):
        clients.append(openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
async def async_sdk():
    clients = []

    def make(gateway, key):
        clients.append(openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        await client.close()


def records():
    return wait_for_usage(1)


def test_sync_chat_completion(gateway, key, upstreams, sdk, async_sdk):
    primary, _ = upstreams
    raw = sdk(gateway, key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the upstream."
    assert completion.usage.prompt_tokens == 12 and completion.usage.completion_tokens == 6
    # The upstream got the upstream model id and our provider key, never the caller's key.
    assert primary.requests[-1]["model"] == "gpt-4o-mini-2024-07-18"
    assert primary.headers[-1]["authorization"] == "Bearer sk-test-primary"
    assert raw.headers["x-gateway-provider"] == "openai"
    assert raw.headers["x-request-id"].startswith("req_")
    # 12 in at $0.15/M + 6 out at $0.60/M
    assert raw.headers["x-gateway-cost"] == "0.00000540"
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    [record] = records()
    assert (record.status, record.provider, record.input_tokens, record.output_tokens) == (
        200,
        "openai",
        12,
        6,
    )
    assert str(record.cost) == "0.00000540"
    assert record.price_version == "gpt-4o-mini@2024-07-18"


async def test_async_chat_completion(gateway, key, upstreams, sdk, async_sdk):
    completion = await async_sdk(gateway, key).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini-2024-07-18"


def test_sync_stream_with_usage_chunk(gateway, key, upstreams, sdk, async_sdk):
    primary, _ = upstreams
    stream = sdk(gateway, key).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the upstream."
    assert chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.completion_tokens == 6
    # We always ask the upstream for stream usage, whatever the client asked.
    assert primary.requests[-1]["stream_options"] == {"include_usage": True}
    [record] = records()
    assert record.stream and record.output_tokens == 6 and str(record.cost) == "0.00000540"


async def test_async_stream_without_usage_chunk(gateway, key, upstreams, sdk, async_sdk):
    stream = await async_sdk(gateway, key).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_models_lists_usable_models_and_aliases(gateway, key, upstreams, sdk, async_sdk):
    models = {m.id: m.owned_by for m in sdk(gateway, key).models.list()}
    assert models["gpt-4o-mini"] == "openai"
    assert models["llama-3.1-8b"] == "groq"
    assert {"fastest", "cheapest", "best", "balanced", "small"} <= set(models)


def test_embeddings(gateway, key, upstreams, sdk, async_sdk):
    result = sdk(gateway, key).embeddings.create(
        model="text-embedding-3-small", input=["one", "two"]
    )
    assert [d.embedding for d in result.data] == [[0.25, -0.5, 0.0], [0.25, -0.5, 1.0]]
    assert result.usage.prompt_tokens == 8


def test_bad_key_is_an_sdk_authentication_error(gateway, upstreams, sdk):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(gateway, "gw-nothing_here").chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert raised.value.status_code == 401
    assert "Invalid" in raised.value.message


def test_unknown_model_is_404_listing_what_exists(gateway, key, upstreams, sdk, async_sdk):
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(gateway, key).chat.completions.create(model="gpt-9", messages=HELLO)
    assert "gpt-4o-mini" in raised.value.message
    assert raised.value.body["param"] == "model"


def test_tools_pass_through_and_tool_calls_come_back(gateway, key, upstreams, sdk, async_sdk):
    primary, _ = upstreams
    from tests.api.loopback import Reply

    tool_answer = primary.completion("gpt-4o-mini-2024-07-18")
    tool_answer["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    tool_answer["choices"][0]["finish_reason"] = "tool_calls"
    primary.then(Reply(body=tool_answer))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = sdk(gateway, key).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, tools=tools, tool_choice="auto"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Oslo"}')
    assert completion.choices[0].finish_reason == "tool_calls"
    assert primary.requests[-1]["tools"] == tools
    assert primary.requests[-1]["tool_choice"] == "auto"
