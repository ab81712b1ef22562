"""A live Anthropic Messages upstream on 127.0.0.1, as strict as the documented API.

Built from https://docs.anthropic.com/en/api/messages (request fields, content blocks),
https://docs.anthropic.com/en/docs/build-with-claude/streaming (the event order) and
https://docs.anthropic.com/en/api/errors (error bodies): it refuses a missing x-api-key (401)
or anthropic-version, unknown fields, a missing max_tokens, a temperature above 1, roles other
than user/assistant, and a tool_result whose tool_use_id the previous assistant turn did not
issue (400); it reports usage in message_start and message_delta as the API does.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
}


class Refusal(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def check(body: dict[str, Any], headers: dict[str, str]) -> None:
    if not headers.get("x-api-key"):
        raise Refusal(401, "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
        raise Refusal(400, "invalid_request_error", "anthropic-version: header is required")
    for name in body:
        if name not in FIELDS:
            raise Refusal(400, "invalid_request_error", f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("max_tokens"), int):
        raise Refusal(400, "invalid_request_error", "max_tokens: Field required")
    if not 0 <= body.get("temperature", 0) <= 1:
        raise Refusal(400, "invalid_request_error", "temperature: must be between 0 and 1")
    issued: set[str] = set()
    for i, message in enumerate(body.get("messages") or []):
        if message.get("role") not in ("user", "assistant"):
            raise Refusal(400, "invalid_request_error", f"messages.{i}.role: unexpected role")
        blocks = message["content"] if isinstance(message["content"], list) else []
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if results - issued:
            raise Refusal(
                400,
                "invalid_request_error",
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks",
            )
        issued = {b["id"] for b in blocks if b.get("type") == "tool_use"}


@dataclass
class FakeAnthropic:
    """Answers each request with the next scripted content (text by default)."""

    input_tokens: int = 21
    output_tokens: int = 9
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def then_text(self, text: str) -> None:
        self.script.append([{"type": "text", "text": text}])

    def then_tool_use(self, tool_id: str, name: str, arguments: dict[str, Any]) -> None:
        self.script.append([{"type": "tool_use", "id": tool_id, "name": name, "input": arguments}])

    def message(self, model: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        tool = any(b["type"] == "tool_use" for b in content)
        return {
            "id": "msg_upstream",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }

    def events(self, model: str, content: list[dict[str, Any]]) -> list[tuple[str, dict]]:
        start = self.message(model, [])
        start["usage"] = {"input_tokens": self.input_tokens, "output_tokens": 1}
        start["stop_reason"] = None
        events = [("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(content):
            if block["type"] == "text":
                opening, delta = (
                    {"type": "text", "text": ""},
                    {
                        "type": "text_delta",
                        "text": block["text"],
                    },
                )
            else:
                opening = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": opening},
                )
            )
            if index == 0:
                events.append(("ping", {"type": "ping"}))
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        final = self.message(model, content)
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw or b"{}")
        self.requests.append(body)
        try:
            if scope["path"] != "/v1/messages":
                raise Refusal(404, "not_found_error", f"Not found: {scope['path']}")
            check(body, headers)
        except Refusal as refusal:
            error = {"type": "error", "error": {"type": refusal.kind, "message": refusal.message}}
            await _send(send, refusal.status, "application/json", json.dumps(error).encode())
            return
        content = self.script.popleft() if self.script else [{"type": "text", "text": "Hi!"}]
        if not body.get("stream"):
            reply = json.dumps(self.message(body["model"], content)).encode()
            await _send(send, 200, "application/json", reply)
            return
        stream = b"".join(
            f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            for name, data in self.events(body["model"], content)
        )
        await _send(send, 200, "text/event-stream", stream)


async def _send(send, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
