"""OpenAI's Responses API on the gateway: the answer's side. A ChatResult becomes a Response
object (https://platform.openai.com/docs/api-reference/responses/object), and the stream's
normalised events become the documented streaming events
(https://platform.openai.com/docs/api-reference/responses-streaming), each with its
sequence_number. The request's side is in openai_responses.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llm.types import ChatResult, StreamEvent, StreamEventType, Usage

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [] if status == "in_progress" else [output_text(text)]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


class ResponseShape:
    """The Response object of one request: its id, and the request's settings echoed back."""

    def __init__(self, body: dict[str, Any], request_id: str, model: str) -> None:
        self.id = f"resp_{request_id[4:]}"
        self.suffix = request_id[4:]
        self.created_at = int(time.time())
        self.model = model
        self.body = body

    def item_id(self, kind: str, n: int) -> str:
        return f"{kind}_{self.suffix}{n:02d}"

    def render(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        *,
        finish_reason: str | None = None,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = self.body
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        if status == "completed" and finish_reason in INCOMPLETE:
            status = "incomplete"
        incomplete = {"reason": INCOMPLETE[finish_reason]} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": body.get("temperature"),
            "text": {"format": text.get("format") or {"type": "text"}},
            "tool_choice": body.get("tool_choice") or "auto",
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p"),
            "truncation": "disabled",
            "usage": usage_body(usage) if usage is not None else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }


def response_body(shape: ResponseShape, result: ChatResult, usage: Usage) -> dict[str, Any]:
    output = []
    if result.text or not result.tool_calls:
        output.append(message_item(shape.item_id("msg", 0), result.text))
    for n, call in enumerate(result.tool_calls, start=1):
        output.append(
            function_call_item(shape.item_id("fc", n), call.id, call.name, call.arguments)
        )
    return shape.render("completed", output, usage, finish_reason=result.finish_reason)


class ResponseStreamWriter:
    """Normalised stream events -> the Responses API's events (see ChunkWriter for the protocol
    the relay drives). One output item is open at a time: the message, or a function call."""

    def __init__(self, shape: ResponseShape) -> None:
        self.shape = shape
        self.sequence = 0
        self.output: list[dict[str, Any]] = []  # items as they stand
        self.open: int | None = None  # index in output of the open item
        self.calls: dict[int, int] = {}  # tool call index -> output index
        self.finish_reason: str | None = None
        self.failed = False

    def _send(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    def opening(self) -> bytes:
        response = self.shape.render("in_progress", [])
        return self._send("response.created", response=response) + self._send(
            "response.in_progress", response=response
        )

    def event(self, event: StreamEvent) -> bytes | None:
        if event.type is StreamEventType.DELTA and event.text:
            out = b""
            if self.open is None or self.output[self.open]["type"] != "message":
                out = self._open_message()
            item = self.output[self.open]
            item["content"][0]["text"] += event.text
            return out + self._send(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=self.open,
                content_index=0,
                delta=event.text,
                logprobs=[],
            )
        if event.type is StreamEventType.TOOL_CALL:
            index = event.tool_call_index or 0
            out = b""
            if index not in self.calls:
                out = self._open_call(index, event)
            position = self.calls[index]
            item = self.output[position]
            if event.text:
                item["arguments"] += event.text
                out += self._send(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=position,
                    delta=event.text,
                )
            return out or None
        if event.type is StreamEventType.DONE:
            self.finish_reason = event.finish_reason
        return None

    def _open_message(self) -> bytes:
        out = self._close()
        self.open = len(self.output)
        item = message_item(self.shape.item_id("msg", self.open), "", "in_progress")
        self.output.append(item)
        out += self._send("response.output_item.added", output_index=self.open, item=item)
        item["content"].append(output_text(""))
        return out + self._send(
            "response.content_part.added",
            item_id=item["id"],
            output_index=self.open,
            content_index=0,
            part=output_text(""),
        )

    def _open_call(self, index: int, event: StreamEvent) -> bytes:
        out = self._close()
        self.open = len(self.output)
        self.calls[index] = self.open
        item = function_call_item(
            self.shape.item_id("fc", self.open),
            event.tool_call_id or self.shape.item_id("call", self.open),
            event.tool_name or "",
            "",
            "in_progress",
        )
        self.output.append(item)
        return out + self._send("response.output_item.added", output_index=self.open, item=item)

    def _close(self) -> bytes:
        """Finish the open item: its .done events, then response.output_item.done."""
        if self.open is None:
            return b""
        position, self.open = self.open, None
        item = self.output[position]
        item["status"] = "completed"
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._send(
                "response.output_text.done",
                item_id=item["id"],
                output_index=position,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            out += self._send(
                "response.content_part.done",
                item_id=item["id"],
                output_index=position,
                content_index=0,
                part=part,
            )
        else:
            out += self._send(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=position,
                arguments=item["arguments"],
            )
        return out + self._send("response.output_item.done", output_index=position, item=item)

    def error(self, message: str, code: str, provider: str | None) -> bytes:
        self.failed = True
        where = f" ({provider})" if provider else ""
        error = {"code": "server_error", "message": f"{message}{where}"}
        response = self.shape.render("failed", self.output, error=error)
        return self._send("response.failed", response=response)

    def closing(self, usage: Usage, cost) -> bytes:
        if self.failed:
            return b""
        out = self._close()
        response = self.shape.render(
            "completed", self.output, usage, finish_reason=self.finish_reason
        )
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._send(kind, response=response)
