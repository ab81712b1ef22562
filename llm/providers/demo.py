"""The demo dialect: answers locally and deterministically, with no network and no key.

It lets the gateway run end to end without upstream accounts. Every answer starts with
"[demo]" so nobody mistakes it for a model's; token counts come from the estimator.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm.tokens import estimate_inputs_usage, estimate_usage, message_text
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ProviderConfig,
    StreamEvent,
    StreamEventType,
    ToolCall,
)

PREFIX = "[demo]"
SUMMARY_WORDS = 12
EMBEDDING_DIMENSIONS = 16
MODELS = ["demo-chat"]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def summarize(text: str) -> str:
    words = text.split()
    summary = " ".join(words[:SUMMARY_WORDS])
    return summary + (" ..." if len(words) > SUMMARY_WORDS else "")


def minimal_value(schema: dict[str, Any]) -> Any:
    """The smallest value a simple JSON schema accepts (object properties all filled in)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_value(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: minimal_value(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [minimal_value(schema.get("items") or {}) for _ in range(count)]
    if kind == "string":
        return "demo".ljust(int(schema.get("minLength", 0)), "o")
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def forced_tool(request: ChatRequest) -> dict[str, Any] | None:
    """The tool a request insists on ("required" picks the first), if any."""
    tools = request.tools or []
    if isinstance(request.tool_choice, dict):
        name = (request.tool_choice.get("function") or {}).get("name")
        return next((t["function"] for t in tools if t["function"]["name"] == name), None)
    if request.tool_choice == "required" and tools:
        return tools[0]["function"]
    return None


def answer(request: ChatRequest) -> tuple[str, list[ToolCall]]:
    tool = forced_tool(request)
    if tool:
        arguments = json.dumps(minimal_value(tool.get("parameters") or {"type": "object"}))
        return "", [ToolCall(id="call_demo_0", name=tool["name"], arguments=arguments)]
    summary = summarize(last_user_text(request.messages))
    response_format = request.response_format or {}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(minimal_value(schema)), []
    if response_format.get("type") == "json_object":
        return json.dumps({"demo": True, "echo": summary}), []
    if not summary:
        return f"{PREFIX} This is a demo answer; no model was called.", []
    return f"{PREFIX} You said: {summary}", []


def embed_text(text: str) -> list[float]:
    """A fixed-size vector derived from a hash: same text, same vector, unit length."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = [(byte - 127.5) / 127.5 for byte in digest[:EMBEDDING_DIMENSIONS]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


class DemoDialect:
    name = "demo"

    async def chat(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> ChatResult:
        started = time.perf_counter()
        text, calls = answer(request)
        usage = estimate_usage(request.messages, text + "".join(c.arguments for c in calls))
        return ChatResult(
            text=text,
            finish_reason="tool_calls" if calls else "stop",
            usage=usage,
            provider=provider.id,
            model=request.model,
            tool_calls=calls,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def stream(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        text, calls = answer(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            yield StreamEvent(
                StreamEventType.DELTA, text=word if index == len(words) - 1 else word + " "
            )
        for index, call in enumerate(calls):
            yield StreamEvent(
                StreamEventType.TOOL_CALL,
                text=call.arguments,
                tool_call_index=index,
                tool_call_id=call.id,
                tool_name=call.name,
            )
        usage = estimate_usage(request.messages, text + "".join(c.arguments for c in calls))
        yield StreamEvent(StreamEventType.USAGE, usage=usage, model=request.model)
        yield StreamEvent(
            StreamEventType.DONE,
            finish_reason="tool_calls" if calls else "stop",
            model=request.model,
        )

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        return EmbeddingResult(
            vectors=[embed_text(text) for text in inputs],
            usage=estimate_inputs_usage(inputs),
            provider=provider.id,
            model=model,
        )

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        return list(MODELS)


DIALECT = DemoDialect()
