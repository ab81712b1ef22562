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

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body
from llm.providers.http import StreamState
from llm.providers.sse import iter_sse, loads
from llm.tokens import estimate_usage
from llm.types import (
    ChatRequest,
    ChatResult,
    ProviderConfig,
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


class PerplexityDialect(HTTPDialect):
    name = "perplexity"
    version_suffix = "/v1"
    chat_path = "v1/agent"
    # models_path stays None: the Agent API has no model listing to check the catalogue against

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
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

    def parse_chat(
        self,
        provider: ProviderConfig,
        request: ChatRequest,
        data: dict[str, Any],
        latency_ms: float,
    ) -> ChatResult:
        if data.get("status") == "failed":
            raise error_from_body(provider, data)
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
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        async with aclosing(iter_sse(response)) as messages:
            async for message in messages:
                if message.data.strip() == "[DONE]":
                    state.finished = True
                    return
                event = loads(message.data)
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
                    raise error_from_body(state.provider, event.get("response") or event)


DIALECT = PerplexityDialect()
