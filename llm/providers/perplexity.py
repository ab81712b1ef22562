"""Perplexity's Agent API dialect (POST {base}/v1/agent, OpenAI Responses format).

Perplexity ended Sonar chat completions on 2026-09-27 and serves Sonar through the Agent API
(https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/how-to): `messages` become `input`
items, the system prompt becomes `instructions`, the token cap is `max_output_tokens`
(`temperature` is kept: https://docs.perplexity.ai/api-reference/agent-post), and web
search is the `web_search` tool (billed per invocation, see the pricing page). An upstream id
"preset:<name>" is sent as `preset` (e.g. pro-search, the old sonar-pro tier) instead of `model`.
Answers arrive as `output` message items with `output_text` parts and url citations; streams are
Responses SSE events ending in `response.completed`, which carries the usage.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm.providers import wire
from llm.tokens import estimate_usage
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ErrorKind,
    ProviderConfig,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)

PRESET_PREFIX = "preset:"
FINISH = {"completed": "stop", "incomplete": "length", "failed": "stop"}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    system = [text_of(m.get("content")) for m in request.messages if m["role"] in SYSTEM_ROLES]
    items = [
        {"role": m["role"], "content": text_of(m.get("content"))}
        for m in request.messages
        if m["role"] in ("user", "assistant")
    ]
    body: dict[str, Any] = {"input": items, "stream": stream}
    if request.model.startswith(PRESET_PREFIX):
        body["preset"] = request.model.removeprefix(PRESET_PREFIX)
    else:
        body["model"] = request.model
        # One step: at most one web_search, the per-request fee the catalogue charges.
        body["tools"] = [{"type": "web_search"}]
        body["max_steps"] = 1
    if system:
        body["instructions"] = "\n\n".join(system)
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


SYSTEM_ROLES = ("system", "developer")


def parse_usage(raw: dict[str, Any] | None) -> Usage | None:
    if not raw or "input_tokens" not in raw:
        return None
    details = raw.get("input_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_input_tokens=int(details.get("cache_read_input_tokens") or 0),
    )


def split_output(data: dict[str, Any]) -> tuple[str, list[str]]:
    texts: list[str] = []
    urls: list[str] = []
    for item in data.get("output") or []:
        if item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if part.get("type") == "output_text":
                texts.append(part.get("text", ""))
                urls += [a["url"] for a in part.get("annotations") or [] if a.get("url")]
    return "".join(texts), list(dict.fromkeys(urls))


def parse_chat(
    provider: ProviderConfig, request: ChatRequest, data: dict[str, Any], latency_ms: float
) -> ChatResult:
    if data.get("status") == "failed":
        raise wire.error_from_body(provider, data)
    text, citations = split_output(data)
    return ChatResult(
        text=text,
        finish_reason=FINISH.get(data.get("status") or "completed", "stop"),
        usage=parse_usage(data.get("usage")) or estimate_usage(request.messages, text),
        provider=provider.id,
        model=data.get("model") or request.model,
        latency_ms=latency_ms,
        citations=citations or None,
    )


async def decode_stream(
    response: httpx.Response, state: wire.StreamState
) -> AsyncIterator[StreamEvent]:
    async for message in wire.iter_sse(response):
        if message.data.strip() == "[DONE]":
            state.finished = True
            return
        event = wire.loads(message.data)
        kind = event.get("type") or message.event
        if kind == "response.output_text.delta" and event.get("delta"):
            yield StreamEvent(StreamEventType.DELTA, text=event["delta"])
        elif kind in ("response.completed", "response.incomplete"):
            final = event.get("response") or {}
            state.model = final.get("model") or state.model
            state.usage = parse_usage(final.get("usage")) or state.usage
            state.citations = split_output(final)[1] or state.citations
            state.finish_reason = FINISH.get(final.get("status") or "completed", "stop")
            state.finished = True
            return
        elif kind in ("response.failed", "error"):
            raise wire.error_from_body(state.provider, event.get("response") or event)


class PerplexityDialect:
    name = "perplexity"

    def _headers(self, provider: ProviderConfig) -> dict[str, str]:
        return wire.build_headers(provider, wire.bearer_auth(provider))

    def _url(self, provider: ProviderConfig) -> str:
        return wire.join_url(wire.strip_suffix(provider.base_url, "/v1"), "v1/agent")

    async def chat(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> ChatResult:
        started = time.perf_counter()
        data = await wire.request_json(
            client,
            provider,
            "POST",
            self._url(provider),
            headers=self._headers(provider),
            body=build_body(request, stream=False),
        )
        return parse_chat(provider, request, data, wire.elapsed_ms(started))

    async def stream(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        async for event in wire.run_stream(
            client,
            provider,
            request,
            self._url(provider),
            headers=self._headers(provider) | {"Accept": "text/event-stream"},
            body=build_body(request, stream=True),
            decode=decode_stream,
        ):
            yield event

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        raise ProviderError(
            ErrorKind.BAD_REQUEST, f"{provider.name} has no embeddings here", provider=provider.id
        )

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        return []  # the Agent API has no model listing to check the catalogue against


DIALECT = PerplexityDialect()
