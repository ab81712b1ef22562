"""The Ollama native dialect (POST {base}/api/chat, NDJSON streaming, /api/embed, /api/tags).

No key is needed locally; when one is configured (a hosted Ollama) it is sent as a Bearer token.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm.providers import wire
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


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
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


async def decode_stream(
    response: httpx.Response, state: wire.StreamState
) -> AsyncIterator[StreamEvent]:
    output: list[str] = []
    calls = 0
    async for chunk in wire.iter_ndjson(response):
        if "error" in chunk:
            raise wire.error_from_body(state.provider, chunk)
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


class OllamaDialect:
    name = "ollama"

    def _headers(self, provider: ProviderConfig) -> dict[str, str]:
        return wire.build_headers(provider, wire.bearer_auth(provider))

    async def chat(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> ChatResult:
        started = time.perf_counter()
        data = await wire.request_json(
            client,
            provider,
            "POST",
            wire.join_url(provider.base_url, "api/chat"),
            headers=self._headers(provider),
            body=build_body(request, stream=False),
        )
        message = wire.require_output(data, provider, "message")
        text = message.get("content") or ""
        calls = tool_calls_of(message)
        return ChatResult(
            text=text,
            finish_reason=finish_reason(data, bool(calls)),
            usage=parse_usage(data, request, text),
            provider=provider.id,
            model=data.get("model") or request.model,
            tool_calls=calls,
            latency_ms=wire.elapsed_ms(started),
            reasoning=message.get("thinking") or None,
        )

    async def stream(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        async for event in wire.run_stream(
            client,
            provider,
            request,
            wire.join_url(provider.base_url, "api/chat"),
            headers=self._headers(provider) | {"Accept": "application/x-ndjson"},
            body=build_body(request, stream=True),
            decode=decode_stream,
        ):
            yield event

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        data = await wire.request_json(
            client,
            provider,
            "POST",
            wire.join_url(provider.base_url, "api/embed"),
            headers=self._headers(provider),
            body={"model": model, "input": inputs},
        )
        counted = data.get("prompt_eval_count")
        return EmbeddingResult(
            vectors=wire.require_output(data, provider, "embeddings"),
            usage=Usage(input_tokens=int(counted)) if counted else estimate_inputs_usage(inputs),
            provider=provider.id,
            model=data.get("model") or model,
        )

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        data = await wire.request_json(
            client,
            provider,
            "GET",
            wire.join_url(provider.base_url, "api/tags"),
            headers=self._headers(provider),
        )
        return [str(row.get("model") or row["name"]) for row in data.get("models") or []]


DIALECT = OllamaDialect()
