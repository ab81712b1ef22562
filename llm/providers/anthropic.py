"""The Anthropic Messages API dialect (POST {base}/v1/messages).

System messages are lifted into "system", OpenAI tool definitions and tool calls become
tool_use/tool_result blocks (a strict tool's JSON Schema goes whole into input_schema; the
`strict` flag itself is OpenAI's and is not sent), `parallel_tool_calls: false` becomes
`disable_parallel_tool_use`, and structured output rides on a forced tool whose input_schema is
the requested JSON schema (its input is returned as the answer text). Images (URL or base64
data URL) become image blocks. Which parameters reach this dialect is decided by the parameter
rules (llm.params): e.g. Claude 4.5 models take `temperature` or `top_p`, never both.

Quirks: "default_max_tokens" (int, default 4096): the cap sent when the request has none,
since the API requires max_tokens.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body, require_output
from llm.providers.http import StreamState
from llm.providers.sse import iter_sse, loads
from llm.tokens import estimate_usage
from llm.types import (
    ChatRequest,
    ChatResult,
    ProviderConfig,
    StreamEvent,
    StreamEventType,
    ToolCall,
    Usage,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
STRUCTURED_TOOL = "json_response"  # name of the forced tool when no schema name is given
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) as Anthropic content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(image_block((part.get("image_url") or {}).get("url", "")))
    return blocks


def image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def translate_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split out the system prompt and merge consecutive same-role turns (the API alternates)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        if role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id", ""),
                    "content": text_of(message.get("content")),
                }
            ]
        else:
            blocks = content_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": json.loads(function.get("arguments") or "{}"),
                    }
                )
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return ("\n\n".join(system) if system else None), turns


def translate_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function = tool.get("function") or tool
        definition = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object"},
        }
        if function.get("description"):
            definition["description"] = function["description"]
        out.append(definition)
    return out


def translate_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    return {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(
        choice
    )


def structured_tool(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The forced tool that carries a json_schema (or json_object) response format."""
    kind = (response_format or {}).get("type")
    if kind == "json_schema":
        spec = response_format["json_schema"]  # type: ignore[index]
        return {
            "name": spec.get("name") or STRUCTURED_TOOL,
            "description": spec.get("description") or "Reply with the structured answer.",
            "input_schema": spec.get("schema") or {"type": "object"},
        }
    if kind == "json_object":
        return {
            "name": STRUCTURED_TOOL,
            "description": "Reply with a JSON object.",
            "input_schema": {"type": "object"},
        }
    return None


def parse_usage(raw: dict[str, Any] | None) -> Usage | None:
    """input_tokens excludes cache reads and writes; our input_tokens is the whole prompt.
    Cache writes are split by lifetime in cache_creation (5 minutes or 1 hour); without that
    split they are 5-minute writes, the default lifetime.
    https://docs.anthropic.com/en/api/messages (usage)"""
    if not raw:
        return None
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    split = raw.get("cache_creation") or {}
    write_1h = int(split.get("ephemeral_1h_input_tokens") or 0)
    write_5m = int(split.get("ephemeral_5m_input_tokens") or 0) if split else cache_write
    cache_write = max(cache_write, write_5m + write_1h)
    tier = raw.get("service_tier")
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_input_tokens=cache_read,
        cache_write_5m_tokens=cache_write - write_1h,
        cache_write_1h_tokens=write_1h,
        service_tier=tier if isinstance(tier, str) and tier != "standard" else "",
    )


def merge_usage(state: StreamState, raw: dict[str, Any] | None) -> None:
    """message_delta usage is cumulative; newer versions restate the input counts too. Input
    counts from message_start are kept when the delta does not restate them."""
    if not raw:
        return
    if raw.get("input_tokens") is not None:
        state.usage = parse_usage(raw)
        return
    usage = state.usage or Usage()
    output = int(raw.get("output_tokens") or usage.output_tokens)
    state.usage = dataclasses.replace(usage, output_tokens=output)


class AnthropicDialect(HTTPDialect):
    name = "anthropic"
    version_suffix = "/v1"
    chat_path = "v1/messages"
    models_path = "v1/models"
    models_params = {"limit": 1000}

    def auth(self, provider: ProviderConfig) -> dict[str, str]:
        auth = {"anthropic-version": API_VERSION}
        if provider.api_key:
            auth["x-api-key"] = provider.api_key
        return auth

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
        system, messages = translate_messages(request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens
            or int(provider.quirks.get("default_max_tokens", DEFAULT_MAX_TOKENS)),
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = request.stop
        if request.user:
            body["metadata"] = {"user_id": request.user}
        if request.tools:
            body["tools"] = translate_tools(request.tools)
        choice = translate_tool_choice(request.tool_choice)
        if request.extra.get("parallel_tool_calls") is False and request.tools:
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice:
            body["tool_choice"] = choice
        forced = structured_tool(request.response_format)
        if forced:
            body["tools"] = [*body.get("tools", []), forced]
            body["tool_choice"] = {"type": "tool", "name": forced["name"]}
        if stream:
            body["stream"] = True
        return body

    def parse_chat(
        self,
        provider: ProviderConfig,
        request: ChatRequest,
        data: dict[str, Any],
        latency_ms: float,
    ) -> ChatResult:
        forced = structured_tool(request.response_format)
        texts, thinking, calls, answer = [], [], [], None
        for block in require_output(data, provider, "content"):
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "thinking":
                thinking.append(block.get("thinking", ""))
            elif kind == "tool_use" and forced and block.get("name") == forced["name"]:
                answer = json.dumps(block.get("input") or {})
            elif kind == "tool_use":
                calls.append(
                    ToolCall(
                        id=block.get("id", ""),
                        name=block.get("name", ""),
                        arguments=json.dumps(block.get("input") or {}),
                    )
                )
        text = answer if answer is not None else "".join(texts)
        finish = STOP_REASONS.get(data.get("stop_reason") or "end_turn", "stop")
        if forced and finish == "tool_calls" and not calls:
            finish = "stop"
        return ChatResult(
            text=text,
            finish_reason=finish,
            usage=parse_usage(data.get("usage")) or estimate_usage(request.messages, text),
            provider=provider.id,
            model=data.get("model") or request.model,
            tool_calls=calls,
            latency_ms=latency_ms,
            reasoning="".join(thinking) or None,
        )

    async def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        forced = structured_tool(state.request.response_format)
        tool_index: dict[int, int] = {}  # content block index -> tool call ordinal
        answer_blocks: set[int] = set()  # blocks of the forced structured-output tool
        async with aclosing(iter_sse(response)) as messages:
            async for message in messages:
                event = loads(message.data)
                kind = event.get("type")
                if kind == "message_start":
                    start = event.get("message") or {}
                    state.model = start.get("model") or state.model
                    state.usage = parse_usage(start.get("usage"))
                elif kind == "content_block_start":
                    block, index = event.get("content_block") or {}, event.get("index", 0)
                    if (
                        block.get("type") == "tool_use"
                        and forced
                        and block.get("name") == forced["name"]
                    ):
                        answer_blocks.add(index)
                    elif block.get("type") == "tool_use":
                        tool_index[index] = len(tool_index)
                        yield StreamEvent(
                            StreamEventType.TOOL_CALL,
                            tool_call_index=tool_index[index],
                            tool_call_id=block.get("id"),
                            tool_name=block.get("name"),
                        )
                elif kind == "content_block_delta":
                    delta, index = event.get("delta") or {}, event.get("index", 0)
                    dtype = delta.get("type")
                    if dtype == "text_delta" and delta.get("text"):
                        yield StreamEvent(StreamEventType.DELTA, text=delta["text"])
                    elif dtype == "thinking_delta" and delta.get("thinking"):
                        yield StreamEvent(StreamEventType.REASONING, text=delta["thinking"])
                    elif dtype == "input_json_delta" and index in answer_blocks:
                        if delta.get("partial_json"):
                            yield StreamEvent(StreamEventType.DELTA, text=delta["partial_json"])
                    elif dtype == "input_json_delta" and index in tool_index:
                        yield StreamEvent(
                            StreamEventType.TOOL_CALL,
                            text=delta.get("partial_json", ""),
                            tool_call_index=tool_index[index],
                        )
                elif kind == "message_delta":
                    merge_usage(state, event.get("usage"))
                    reason = (event.get("delta") or {}).get("stop_reason")
                    if reason:
                        finish = STOP_REASONS.get(reason, "stop")
                        if forced and not tool_index and finish == "tool_calls":
                            finish = "stop"
                        state.finish_reason = finish
                elif kind == "message_stop":
                    state.finished = True
                    return
                elif kind == "error":
                    raise error_from_body(state.provider, event)


DIALECT = AnthropicDialect()
