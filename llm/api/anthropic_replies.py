"""Anthropic's Messages API on the gateway: the answer's side. A ChatResult becomes an
Anthropic Message (https://docs.anthropic.com/en/api/messages), and the stream's normalised
events become Anthropic's server-sent events in their documented order
(https://docs.anthropic.com/en/docs/build-with-claude/streaming): message_start, per content
block content_block_start / content_block_delta (text_delta, input_json_delta) /
content_block_stop, a ping, message_delta with stop_reason and usage, message_stop; an `error`
event if the upstream broke. The request's side is in anthropic_messages.py.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from llm.types import ChatResult, StreamEvent, StreamEventType, Usage

STOP_REASONS = {  # our finish_reason -> Anthropic's stop_reason
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def message_id(request_id: str) -> str:
    return f"msg_{request_id[4:]}"


def stop_reason(finish_reason: str | None, has_tool_use: bool) -> str:
    reason = STOP_REASONS.get(finish_reason or "stop", "end_turn")
    return "tool_use" if has_tool_use and reason == "end_turn" else reason


def usage_body(usage: Usage) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from input_tokens; ours includes them."""
    written = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_input_tokens - written, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": usage.cached_input_tokens,
    }


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's tool_use.input is."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def message_body(
    result: ChatResult, usage: Usage, *, request_id: str, model: str
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if result.text:
        content.append({"type": "text", "text": result.text})
    for call in result.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_{secrets.token_hex(12)}",
                "name": call.name,
                "input": tool_input(call.arguments),
            }
        )
    return {
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(result.finish_reason, bool(result.tool_calls)),
        "stop_sequence": None,
        "usage": usage_body(usage),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class MessageStreamWriter:
    """Normalised stream events -> Anthropic's server-sent events (see ChunkWriter for the
    protocol the relay drives). A content block is open at a time: text and each tool call
    get their own, in the order they arrive."""

    def __init__(self, *, request_id: str, model: str, input_tokens: int) -> None:
        self.message_id = message_id(request_id)
        self.model = model
        self.input_tokens = input_tokens  # an estimate: the real count comes in message_delta
        self.blocks = 0  # content blocks started
        self.open: str | None = None  # the open block's kind: "text" or "tool_use"
        self.tool_blocks: dict[int, int] = {}  # tool call index -> its block index
        self.finish_reason: str | None = None
        self.pinged = False
        self.failed = False

    def opening(self) -> bytes:
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def event(self, event: StreamEvent) -> bytes | None:
        if event.type is StreamEventType.DELTA and event.text:
            out = b"" if self.open == "text" else self._start({"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": event.text}
            return out + self._delta(self.blocks - 1, delta)
        if event.type is StreamEventType.TOOL_CALL:
            index = event.tool_call_index or 0
            out = b""
            if index not in self.tool_blocks:
                block = {
                    "type": "tool_use",
                    "id": event.tool_call_id or f"toolu_{secrets.token_hex(12)}",
                    "name": event.tool_name or "",
                    "input": {},
                }
                out = self._start(block)
                self.tool_blocks[index] = self.blocks - 1
            if event.text:
                delta = {"type": "input_json_delta", "partial_json": event.text}
                out += self._delta(self.tool_blocks[index], delta)
            return out or None
        if event.type is StreamEventType.DONE:
            self.finish_reason = event.finish_reason
        return None

    def error(self, message: str, code: str, provider: str | None) -> bytes:
        self.failed = True
        kind = "overloaded_error" if "overloaded" in code or "rate" in code else "api_error"
        where = f" ({provider})" if provider else ""
        body = {"type": "error", "error": {"type": kind, "message": f"{message}{where}"}}
        return sse("error", body)

    def closing(self, usage: Usage, cost) -> bytes:
        if self.failed:
            return b""
        out = self._stop() + self._ping()
        delta = {
            "stop_reason": stop_reason(self.finish_reason, bool(self.tool_blocks)),
            "stop_sequence": None,
        }
        out += sse(
            "message_delta", {"type": "message_delta", "delta": delta, "usage": usage_body(usage)}
        )
        return out + sse("message_stop", {"type": "message_stop"})

    def _start(self, block: dict[str, Any]) -> bytes:
        out = self._stop()
        out += sse(
            "content_block_start",
            {"type": "content_block_start", "index": self.blocks, "content_block": block},
        )
        self.blocks += 1
        self.open = block["type"]
        return out + self._ping()

    def _stop(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})

    def _ping(self) -> bytes:
        if self.pinged:
            return b""
        self.pinged = True
        return sse("ping", {"type": "ping"})

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
