"""The Cohere v2 dialect (POST {base}/v2/chat, /v2/embed; models listed at /v1/models).

Strict tools (OpenAI's per-function `strict`) become the request-wide `strict_tools: true`.

Quirks: "embed_input_type" (default "search_document"), which v3+ embedding models require.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body, require_output
from llm.providers.http import StreamState
from llm.providers.sse import iter_sse, loads
from llm.tokens import estimate_inputs_usage, estimate_usage
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ProviderConfig,
    StreamEvent,
    StreamEventType,
    ToolCall,
    Usage,
)

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "USER_CANCEL": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
TOOL_CHOICES = {"required": "REQUIRED", "none": "NONE"}


def translate_message(message: dict[str, Any]) -> dict[str, Any]:
    """v2 messages are OpenAI-shaped already; keep the fields Cohere knows."""
    role = "system" if message.get("role") == "developer" else message.get("role")
    out: dict[str, Any] = {"role": role}
    content = message.get("content")
    if isinstance(content, list):
        content = [
            {"type": "text", "text": p.get("text", "")}
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        ]
    if content is not None:
        out["content"] = content
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id", "")
        out.setdefault("content", "")
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": call.get("id", ""),
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": call["function"].get("arguments") or "{}",
                },
            }
            for call in message["tool_calls"]
        ]
    return out


def translate_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """OpenAI tools as v2 tools; per-tool `strict` becomes the request's strict_tools."""
    if not tools:
        return None
    return [
        {
            "type": "function",
            "function": {k: v for k, v in (tool.get("function") or {}).items() if k != "strict"},
        }
        for tool in tools
    ]


def parse_usage(raw: dict[str, Any] | None) -> Usage | None:
    """ "tokens" counts what the model processed; "billed_units" is what Cohere bills, which the
    cost is computed on. https://docs.cohere.com/reference/chat (usage)"""
    if not raw:
        return None
    counts = raw.get("tokens") or raw.get("billed_units") or {}
    billed = raw.get("billed_units") or {}
    if "input_tokens" not in counts and "output_tokens" not in counts:
        return None
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cached_input_tokens=int(raw.get("cached_tokens") or 0),
        billed_input_units=_units(billed.get("input_tokens")),
        billed_output_units=_units(billed.get("output_tokens")),
    )


def _units(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


class CohereDialect(HTTPDialect):
    name = "cohere"
    version_suffix = "/v2"
    chat_path = "v2/chat"
    models_path = "v1/models"
    models_params = {"page_size": 1000}

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [translate_message(m) for m in request.messages],
            "stream": stream,
        }
        for key, value in (
            ("max_tokens", request.max_tokens),
            ("temperature", request.temperature),
            ("p", request.top_p),
            ("stop_sequences", request.stop),
            ("seed", request.seed),
            ("tools", translate_tools(request.tools)),
            ("presence_penalty", request.extra.get("presence_penalty")),
            ("frequency_penalty", request.extra.get("frequency_penalty")),
        ):
            if value is not None:
                body[key] = value
        if any((t.get("function") or {}).get("strict") for t in request.tools or []):
            body["strict_tools"] = True
        if isinstance(request.tool_choice, str) and request.tool_choice in TOOL_CHOICES:
            body["tool_choice"] = TOOL_CHOICES[request.tool_choice]
        elif isinstance(request.tool_choice, dict):
            # Cohere cannot force one named tool: force a call and offer only that tool.
            name = (request.tool_choice.get("function") or {}).get("name")
            body["tool_choice"] = "REQUIRED"
            body["tools"] = [t for t in body.get("tools", []) if t["function"]["name"] == name]
        response_format = request.response_format or {}
        if response_format.get("type") == "json_schema":
            body["response_format"] = {
                "type": "json_object",
                "json_schema": (response_format.get("json_schema") or {}).get("schema") or {},
            }
        elif response_format.get("type") == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def parse_chat(
        self,
        provider: ProviderConfig,
        request: ChatRequest,
        data: dict[str, Any],
        latency_ms: float,
    ) -> ChatResult:
        message = require_output(data, provider, "message")
        text = "".join(
            part.get("text", "")
            for part in message.get("content") or []
            if part.get("type") == "text"
        )
        calls = [
            ToolCall(
                id=call.get("id", ""),
                name=call["function"]["name"],
                arguments=call["function"].get("arguments") or "{}",
            )
            for call in message.get("tool_calls") or []
        ]
        return ChatResult(
            text=text,
            finish_reason=FINISH_REASONS.get(data.get("finish_reason") or "COMPLETE", "stop"),
            usage=parse_usage(data.get("usage")) or estimate_usage(request.messages, text),
            provider=provider.id,
            model=request.model,
            tool_calls=calls,
            latency_ms=latency_ms,
            reasoning=message.get("tool_plan") or None,
        )

    async def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        async with aclosing(iter_sse(response)) as messages:
            async for message in messages:
                event = loads(message.data)
                kind = event.get("type") or message.event
                delta = (event.get("delta") or {}).get("message") or {}
                if kind == "content-delta":
                    text = (delta.get("content") or {}).get("text")
                    if text:
                        yield StreamEvent(StreamEventType.DELTA, text=text)
                elif kind == "tool-plan-delta" and delta.get("tool_plan"):
                    yield StreamEvent(StreamEventType.REASONING, text=delta["tool_plan"])
                elif kind in ("tool-call-start", "tool-call-delta"):
                    call = delta.get("tool_calls") or {}
                    function = call.get("function") or {}
                    yield StreamEvent(
                        StreamEventType.TOOL_CALL,
                        text=function.get("arguments") or "",
                        tool_call_index=event.get("index", 0),
                        tool_call_id=call.get("id"),
                        tool_name=function.get("name"),
                    )
                elif kind == "message-end":
                    end = event.get("delta") or {}
                    state.usage = parse_usage(end.get("usage")) or state.usage
                    state.finish_reason = FINISH_REASONS.get(
                        end.get("finish_reason") or "COMPLETE", "stop"
                    )
                    if end.get("error"):
                        raise error_from_body(state.provider, {"message": end["error"]})
                    state.finished = True
                    return

    def parse_models(self, data: Any) -> list[str]:
        return [str(row["name"]) for row in data.get("models") or [] if row.get("name")]

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        data = await self.send(
            client,
            provider,
            "POST",
            self.url(provider, "v2/embed"),
            body={
                "model": model,
                "texts": inputs,
                "embedding_types": ["float"],
                "input_type": provider.quirks.get("embed_input_type", "search_document"),
            },
        )
        embeddings = require_output(data, provider, "embeddings")
        vectors = embeddings.get("float") if isinstance(embeddings, dict) else embeddings
        billed = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens")
        return EmbeddingResult(
            vectors=vectors or [],
            usage=Usage(input_tokens=int(billed)) if billed else estimate_inputs_usage(inputs),
            provider=provider.id,
            model=model,
        )


DIALECT = CohereDialect()
