"""The Ollama native dialect (POST {base}/api/chat, NDJSON streaming, /api/embed, /api/tags).

No key is needed locally; when one is configured (a hosted Ollama) it is sent as a Bearer token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body, require_output
from llm.providers.http import StreamState
from llm.providers.sse import iter_ndjson
from llm.tokens import estimate_inputs_usage, estimate_messages_tokens, estimate_tokens
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

DONE_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def translate_message(message: dict[str, Any]) -> dict[str, Any]:
    """Ollama wants string content, images apart, and tool-call arguments as objects."""
    content = message.get("content")
    out: dict[str, Any] = {"role": message.get("role")}
    if isinstance(content, list):
        out["content"] = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        images = [
            p["image_url"]["url"].split(";base64,", 1)[-1]
            for p in content
            if p.get("type") == "image_url"
        ]
        if images:
            out["images"] = images
    else:
        out["content"] = content or ""
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.loads(call["function"].get("arguments") or "{}"),
                }
            }
            for call in message["tool_calls"]
        ]
    if message.get("role") == "tool" and message.get("name"):
        out["tool_name"] = message["name"]
    return out


def parse_usage(data: dict[str, Any], request: ChatRequest, output: str) -> Usage:
    """prompt_eval_count is left out when the prompt came from Ollama's cache: estimate it."""
    prompt, generated = data.get("prompt_eval_count"), data.get("eval_count")
    return Usage(
        input_tokens=int(prompt)
        if prompt is not None
        else estimate_messages_tokens(request.messages),
        output_tokens=int(generated) if generated is not None else estimate_tokens(output),
        estimated=prompt is None or generated is None,
    )


def tool_calls_of(message: dict[str, Any], first_index: int = 0) -> list[ToolCall]:
    return [
        ToolCall(
            id=call.get("id") or f"call_{first_index + offset}",
            name=call["function"]["name"],
            arguments=json.dumps(call["function"].get("arguments") or {}),
        )
        for offset, call in enumerate(message.get("tool_calls") or [])
    ]


def finish_reason(data: dict[str, Any], has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return DONE_REASONS.get(data.get("done_reason") or "stop", "stop")


class OllamaDialect(HTTPDialect):
    name = "ollama"
    chat_path = "api/chat"
    stream_accept = "application/x-ndjson"
    models_path = "api/tags"

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [translate_message(m) for m in request.messages],
            "stream": stream,  # Ollama streams unless told otherwise
        }
        options = {
            key: value
            for key, value in (
                ("num_predict", request.max_tokens),
                ("temperature", request.temperature),
                ("top_p", request.top_p),
                ("stop", request.stop),
                ("seed", request.seed),
                ("presence_penalty", request.extra.get("presence_penalty")),
                ("frequency_penalty", request.extra.get("frequency_penalty")),
            )
            if value is not None
        }
        if options:
            body["options"] = options
        if request.tools:
            body["tools"] = request.tools
        response_format = request.response_format or {}
        if response_format.get("type") == "json_schema":
            body["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
        elif response_format.get("type") == "json_object":
            body["format"] = "json"
        return body

    def parse_chat(
        self, provider: ProviderConfig, request: ChatRequest, data: Any, latency_ms: float
    ) -> ChatResult:
        message = require_output(data, provider, "message")
        text = message.get("content") or ""
        calls = tool_calls_of(message)
        return ChatResult(
            text=text,
            finish_reason=finish_reason(data, bool(calls)),
            usage=parse_usage(data, request, text),
            provider=provider.id,
            model=data.get("model") or request.model,
            tool_calls=calls,
            latency_ms=latency_ms,
            reasoning=message.get("thinking") or None,
        )

    async def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        output: list[str] = []
        calls = 0
        async with aclosing(iter_ndjson(response)) as chunks:
            async for chunk in chunks:
                if "error" in chunk:
                    raise error_from_body(state.provider, chunk)
                state.model = chunk.get("model") or state.model
                message = chunk.get("message") or {}
                if message.get("thinking"):
                    yield StreamEvent(StreamEventType.REASONING, text=message["thinking"])
                if message.get("content"):
                    output.append(message["content"])
                    yield StreamEvent(StreamEventType.DELTA, text=message["content"])
                for call in tool_calls_of(message, calls):
                    yield StreamEvent(
                        StreamEventType.TOOL_CALL,
                        text=call.arguments,
                        tool_call_index=calls,
                        tool_call_id=call.id,
                        tool_name=call.name,
                    )
                    calls += 1
                if chunk.get("done"):
                    state.usage = parse_usage(chunk, state.request, "".join(output))
                    state.finish_reason = finish_reason(chunk, calls > 0)
                    state.finished = True
                    return

    def parse_models(self, data: Any) -> list[str]:
        return [str(row.get("model") or row["name"]) for row in data.get("models") or []]

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        data = await self.send(
            client,
            provider,
            "POST",
            self.url(provider, "api/embed"),
            body={"model": model, "input": inputs},
        )
        counted = data.get("prompt_eval_count")
        return EmbeddingResult(
            vectors=require_output(data, provider, "embeddings"),
            usage=Usage(input_tokens=int(counted)) if counted else estimate_inputs_usage(inputs),
            provider=provider.id,
            model=data.get("model") or model,
        )


DIALECT = OllamaDialect()
