"""Local fakes of the providers' HTTP APIs, built on httpx.MockTransport.

A FakeUpstream routes by method and path, checks the auth header the way the real provider
does (answering with that provider's documented error body when it is wrong), records every
request, and replies with captured-shape payloads from tests/llm/fixtures/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llm.http import build_client
from llm.types import ChatRequest, ProviderConfig, StreamEvent, StreamEventType

FIXTURES = Path(__file__).parent / "fixtures"
CHUNK_SIZE = 29  # odd-sized network chunks, so lines straddle chunk boundaries

STREAM_MEDIA_TYPES = {
    "openai": "text/event-stream",
    "anthropic": "text/event-stream",
    "gemini": "text/event-stream",
    "cohere": "text/event-stream",
    "ollama": "application/x-ndjson",
    "perplexity": "text/event-stream",
}
# How each provider answers a wrong or missing key: (status, documented error body).
UNAUTHORIZED = {
    "openai": (401, "openai/error_401.json"),
    "anthropic": (401, "anthropic/error_401.json"),
    "gemini": (400, "gemini/error_invalid_key.json"),
    "cohere": (401, "cohere/error_401.json"),
    "perplexity": (401, "perplexity/error_401.json"),
}


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


async def chunked(data: bytes, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def broken(data: bytes, error: Exception, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Send what there is, then fail the way a dropped connection does."""
    async for chunk in chunked(data, size):
        yield chunk
    raise error


def json_reply(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def stream_reply(
    text: str, media_type: str = "text/event-stream", error: Exception | None = None
) -> httpx.Response:
    data = text.encode("utf-8")
    content = broken(data, error) if error else chunked(data)
    return httpx.Response(200, headers={"content-type": media_type}, content=content)


@dataclass
class Recorded:
    method: str
    url: httpx.URL
    headers: httpx.Headers
    body: Any


Reply = httpx.Response | Callable[[httpx.Request, Any], httpx.Response]


@dataclass
class FakeUpstream:
    dialect: str
    auth: tuple[str, str] | None = None  # header that must carry exactly this value
    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def route(self, method: str, path: str, reply: Reply) -> FakeUpstream:
        self.routes[(method, path)] = reply
        return self

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def client(self) -> httpx.AsyncClient:
        return build_client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append(Recorded(request.method, request.url, request.headers, body))
        if self.auth is not None and request.headers.get(self.auth[0]) != self.auth[1]:
            status, name = UNAUTHORIZED[self.dialect]
            return json_reply(fixture_json(name), status)
        reply = self.routes.get((request.method, request.url.path))
        if reply is None:
            return json_reply({"error": {"message": f"no route {request.url.path}"}}, 404)
        return reply(request, body) if callable(reply) else reply


@dataclass(frozen=True)
class Case:
    """One of the twelve providers as configured, with what its real API expects."""

    provider: ProviderConfig
    model: str
    chat_url: str
    stream_url: str
    auth: tuple[str, str] | None

    @property
    def id(self) -> str:
        return self.provider.id


def upstream_for(
    case: Case,
    *,
    chat: str | None = None,
    stream: str | None = None,
    stream_error: Exception | None = None,
) -> FakeUpstream:
    """A fake of the case's provider answering chat and stream requests from fixtures."""
    dialect = case.provider.dialect
    chat = chat or DEFAULT_CHAT[dialect]
    stream = stream or DEFAULT_STREAM[dialect]
    fake = FakeUpstream(dialect, auth=case.auth)
    chat_path = httpx.URL(case.chat_url).path
    stream_path = httpx.URL(case.stream_url).path

    def answer_stream() -> httpx.Response:
        return stream_reply(fixture_text(stream), STREAM_MEDIA_TYPES[dialect], stream_error)

    if chat_path == stream_path:  # one endpoint; the body's stream flag decides

        def reply(request: httpx.Request, body: Any) -> httpx.Response:
            return answer_stream() if body.get("stream") else json_reply(fixture_json(chat))

        fake.route("POST", chat_path, reply)
    else:
        fake.route("POST", chat_path, json_reply(fixture_json(chat)))
        fake.route("POST", stream_path, lambda request, body: answer_stream())
    return fake


DEFAULT_CHAT = {
    "openai": "openai/chat.json",
    "anthropic": "anthropic/message.json",
    "gemini": "gemini/generate.json",
    "cohere": "cohere/chat.json",
    "ollama": "ollama/chat.json",
    "perplexity": "perplexity/response.json",
}
DEFAULT_STREAM = {
    "openai": "openai/stream.txt",
    "anthropic": "anthropic/stream.txt",
    "gemini": "gemini/stream.txt",
    "cohere": "cohere/stream.txt",
    "ollama": "ollama/stream.ndjson",
    "perplexity": "perplexity/stream.txt",
}


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if e.type == StreamEventType.DELTA)


def tool_calls_of(events: list[StreamEvent]) -> dict[int, dict[str, str]]:
    """Tool-call fragments assembled the way a client would: by index."""
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if event.type != StreamEventType.TOOL_CALL:
            continue
        call = calls.setdefault(event.tool_call_index or 0, {"id": "", "name": "", "arguments": ""})
        call["id"] = event.tool_call_id or call["id"]
        call["name"] = event.tool_name or call["name"]
        call["arguments"] += event.text
    return calls


def question(model: str, **overrides: Any) -> ChatRequest:
    """The request most tests send: a system prompt and one user question."""
    fields: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
    }
    fields.update(overrides)
    return ChatRequest(**fields)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
