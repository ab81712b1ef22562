"""A stream's lines go to the client in as few writes as the upstream allows, never later; an
answer leaves before its settlement runs.

The API's route runs in-process (no server) with the upstream answered by httpx.MockTransport,
so every write the gateway makes is one `http.response.body` message here.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gateway_project.api_handler import ApiASGIHandler
from llm.api import settlement
from llm.api.auth import forget_cached_keys
from llm.http import set_client
from tests.api.test_api_handler import call
from tests.test_worker import serve

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = ["Hello", " there", ",", " friend", "!"]


def upstream_events() -> list[bytes]:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in WORDS]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    chunks.append({"choices": [], "usage": usage})
    return [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks] + [b"data: [DONE]\n\n"]


def upstream_sending(parts: list[bytes], gap: float) -> httpx.AsyncClient:
    async def body():
        for part in parts:
            yield part
            await asyncio.sleep(gap)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def stream(key: str) -> list[bytes]:
    """The body parts the gateway wrote for one streamed chat completion."""
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]
    answer = await call(
        ApiASGIHandler(), "POST", "/v1/chat/completions", json.dumps(body).encode(), headers=headers
    )
    assert answer.status == 200
    return [message["body"] for message in answer.sent[1:] if message.get("body")]


def words_in(parts: list[bytes]) -> list[str]:
    lines = b"".join(parts).decode().split("\n\n")
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    return [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]


@pytest.fixture
def api(upstreams, key):
    forget_cached_keys()
    yield key
    set_client(None)


async def test_events_that_arrive_together_leave_in_one_write(api):
    set_client(upstream_sending([b"".join(upstream_events())], gap=0))
    parts = await stream(api)
    assert len(parts) == 1  # every event, the usage chunk and [DONE]
    assert [w for w in words_in(parts) if w] == WORDS
    assert parts[-1].endswith(b"data: [DONE]\n\n")


async def test_events_that_arrive_apart_leave_apart_without_waiting(api):
    set_client(upstream_sending(upstream_events(), gap=0.01))
    parts = await stream(api)
    assert [w for part in parts for w in words_in([part]) if w] == WORDS
    # Each word was written as it came, in a write of its own.
    assert sum(1 for part in parts if any(words_in([part]))) == len(WORDS)


async def test_an_answer_is_written_before_its_settlement_runs(api, monkeypatch):
    """Settling (usage record, log line, metrics) is off the answer's path: the production
    worker holds a turn's writes to its end, and the answer still leaves before the settlement
    does its work."""
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
    answer = httpx.MockTransport(lambda request: httpx.Response(200, json=completion))
    set_client(httpx.AsyncClient(transport=answer))
    protocol, socket = serve(ApiASGIHandler())
    seen, observed = [], settlement.observe_call

    def observe(call, result):
        seen.append(list(socket.writes))  # what had reached the socket when settling began
        observed(call, result)

    monkeypatch.setattr(settlement, "observe_call", observe)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    protocol.data_received(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {api}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    )
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    await settlement.drain_background()
    [writes] = seen
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
