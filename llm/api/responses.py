"""Step 6: normalised results -> OpenAI-shaped JSON and SSE chunks."""

from __future__ import annotations

from typing import Any

from llm.json_codec import encode_json
from llm.types import ChatResult, StreamEvent, StreamEventType, Usage


def money(amount) -> str:
    """USD as a plain decimal string: "0.00000540", never "5.4E-6" or "0E-8"."""
    return f"{amount:f}"


def usage_body(usage: Usage, cost=None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if cost is not None:
        body["cost"] = money(cost)  # ours: USD, exact decimal as a string
    if usage.estimated:
        body["estimated"] = True
    return body


def tool_calls_body(result: ChatResult) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in result.tool_calls
    ]


def chat_completion(
    result: ChatResult, usage: Usage, cost, *, completion_id: str, created: int, model: str
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        message["tool_calls"] = tool_calls_body(result)
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": result.finish_reason,
                "logprobs": result.logprobs,
            }
        ],
        "usage": usage_body(usage, cost),
        "provider": result.provider,
    }
    if result.citations:
        body["citations"] = result.citations
    return body


class ChunkWriter:
    """Turns StreamEvents into `data: {...}\\n\\n` chat.completion.chunk lines.

    The stream writers' protocol (the relay in views.py drives it): opening() once, event()
    per upstream event, error() if the upstream broke, closing(usage, cost) at a clean end."""

    def __init__(
        self, *, completion_id: str, created: int, model: str, include_usage: bool = False
    ) -> None:
        self.base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self.sent_role = False
        self.include_usage = include_usage

    def opening(self) -> bytes:
        return b""

    def _line(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + encode_json({**self.base, **payload}) + b"\n\n"

    def _delta(
        self, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
    ) -> bytes:
        if not self.sent_role:
            delta = {"role": "assistant", **delta}
            self.sent_role = True
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return self._line({"choices": [choice]})

    def event(self, event: StreamEvent) -> bytes | None:
        if event.type is StreamEventType.DELTA:
            return self._delta({"content": event.text}, logprobs=event.logprobs)
        if event.type is StreamEventType.REASONING:
            return self._delta({"reasoning_content": event.text})
        if event.type is StreamEventType.TOOL_CALL:
            call: dict[str, Any] = {"index": event.tool_call_index or 0}
            if event.tool_call_id:
                call["id"] = event.tool_call_id
                call["type"] = "function"
            function: dict[str, Any] = {"arguments": event.text}
            if event.tool_name:
                function["name"] = event.tool_name
            call["function"] = function
            return self._delta({"tool_calls": [call]})
        if event.type is StreamEventType.DONE:
            return self._delta({}, event.finish_reason or "stop")
        return None

    def usage(self, usage: Usage, cost) -> bytes:
        return self._line({"choices": [], "usage": usage_body(usage, cost)})

    def error(self, message: str, code: str, provider: str | None) -> bytes:
        body = {"message": message, "type": "upstream_error", "code": code, "provider": provider}
        return b"data: " + encode_json({"error": body}) + b"\n\n"

    def closing(self, usage: Usage, cost) -> bytes:
        """The usage chunk when the client asked for it (stream_options), then [DONE]."""
        tail = self.usage(usage, cost) if self.include_usage else b""
        return tail + b"data: [DONE]\n\n"
