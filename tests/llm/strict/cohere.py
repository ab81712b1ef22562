"""A strict fake of Cohere's v2 chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.llm.strict.answers import COMPLETION_TOKENS, PROMPT_TOKENS, Want, error, names, sse

COHERE_FIELDS = names(
    "stream model messages tools strict_tools documents citation_options response_format "
    "safety_mode max_tokens stop_sequences temperature seed frequency_penalty "
    "presence_penalty k p logprobs tool_choice thinking priority"
)
COHERE_FUNCTION_FIELDS = frozenset({"name", "description", "parameters"})


@dataclass
class Cohere:
    """v2 chat: https://docs.cohere.com/reference/chat. Unknown fields answer 400 with
    {"message": ...}; tool_choice is REQUIRED or NONE only; strict tools are the request-wide
    strict_tools (https://docs.cohere.com/v2/docs/tool-use-parameter-types). Usage: "usage" with
    billed_units and tokens, on the response or on message-end."""

    provider: str = "cohere"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path != "/v2/chat":
            return error(404, {"message": "not found"})
        refusal = self.check(body)
        if refusal is not None:
            return error(400, {"id": "fake", "message": refusal})
        want = self.want(body)
        return self.stream(want) if body.get("stream") else self.chat(want)

    def check(self, body: dict[str, Any]) -> str | None:
        for name in body:
            if name not in COHERE_FIELDS:
                return f"invalid request: unknown field '{name}'"
        if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
            return "invalid request: tool_choice must be one of REQUIRED, NONE"
        for i, tool in enumerate(body.get("tools") or []):
            for name in tool.get("function") or {}:
                if name not in COHERE_FUNCTION_FIELDS:
                    return f"invalid request: unknown field 'tools[{i}].function.{name}'"
        return None

    def want(self, body: dict[str, Any]) -> Want:
        tools = body.get("tools") or []
        if body.get("tool_choice") == "REQUIRED" and tools:
            function = tools[0]["function"]
            return Want(tool=(function["name"], function.get("parameters") or {}))
        fmt = body.get("response_format") or {}
        return Want(json_schema=fmt.get("json_schema"), json=fmt.get("type") == "json_object")

    def usage(self) -> dict[str, Any]:
        counts = {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS}
        return {"billed_units": counts, "tokens": counts}

    def chat(self, want: Want) -> httpx.Response:
        message: dict[str, Any] = {"role": "assistant"}
        if want.tool:
            message["tool_calls"] = [
                {
                    "id": "call_fake1",
                    "type": "function",
                    "function": {"name": want.tool[0], "arguments": want.arguments()},
                }
            ]
            finish = "TOOL_CALL"
        else:
            message["content"] = [{"type": "text", "text": want.text()}]
            finish = "COMPLETE"
        return httpx.Response(
            200,
            json={"id": "fake", "finish_reason": finish, "message": message, "usage": self.usage()},
        )

    def stream(self, want: Want) -> httpx.Response:
        events: list[dict[str, Any]] = [
            {"type": "message-start", "id": "fake", "delta": {"message": {"role": "assistant"}}}
        ]
        if want.tool:
            call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": want.tool[0], "arguments": ""},
            }
            events += [
                {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}},
                {
                    "type": "tool-call-delta",
                    "index": 0,
                    "delta": {
                        "message": {"tool_calls": {"function": {"arguments": want.arguments()}}}
                    },
                },
            ]
            finish = "TOOL_CALL"
        else:
            events.append(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": want.text()}}},
                }
            )
            finish = "COMPLETE"
        events.append(
            {"type": "message-end", "delta": {"finish_reason": finish, "usage": self.usage()}}
        )
        return sse(events, named=True)
