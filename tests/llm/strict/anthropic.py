"""A strict fake of Anthropic's Messages API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.llm.strict.answers import (
    ANSWER,
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    Want,
    error,
    names,
    sample,
    sse,
)

ANTHROPIC_FIELDS = names(
    "model messages max_tokens system metadata stop_sequences stream temperature top_p "
    "top_k tools tool_choice thinking service_tier container mcp_servers "
    "context_management"
)
ANTHROPIC_TOOL_FIELDS = frozenset({"name", "description", "input_schema", "cache_control", "type"})
ANTHROPIC_CHOICE_FIELDS = frozenset({"type", "name", "disable_parallel_tool_use"})


def anthropic_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass
class Anthropic:
    """The Messages API: https://docs.anthropic.com/en/api/messages. Unknown fields answer 400
    "Extra inputs are not permitted"; Claude 4.5 models answer 400 when temperature and top_p
    are both given (https://platform.claude.com/docs/en/about-claude/models/migration-guide);
    Claude Sonnet 5.5 refuses non-default sampling parameters and forced tool use
    (https://platform.claude.com/docs/en/models/sonnet-5-5/overview);
    temperature runs 0..1; turns alternate starting with user. Usage: input on message_start,
    output on message_delta."""

    provider: str = "anthropic"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path != "/v1/messages":
            return error(404, anthropic_error("Not found", "not_found_error"))
        refusal = self.check(body)
        if refusal is not None:
            return error(400, anthropic_error(refusal))
        want = self.want(body)
        return self.stream(body, want) if body.get("stream") else self.message(body, want)

    def check(self, body: dict[str, Any]) -> str | None:
        for name in body:
            if name not in ANTHROPIC_FIELDS:
                return f"{name}: Extra inputs are not permitted"
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        if "temperature" in body and "top_p" in body and "4-5" in body["model"]:
            return (
                "`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one."
            )
        if not 0 <= body.get("temperature", 0) <= 1:
            return "temperature: Input should be less than or equal to 1"
        if body["model"].startswith("claude-sonnet-5"):  # Sonnet 5 and 5.5 overview pages
            if body.get("temperature", 1) != 1 or "top_p" in body:
                return (
                    "Sampling parameters other than the defaults are not supported for this model."
                )
            if (body.get("tool_choice") or {}).get("type") in ("tool", "any"):
                return "Forced tool use is not supported for this model."
        for i, tool in enumerate(body.get("tools") or []):
            for name in tool:
                if name not in ANTHROPIC_TOOL_FIELDS:
                    return f"tools.{i}.custom.{name}: Extra inputs are not permitted"
        for name in body.get("tool_choice") or {}:
            if name not in ANTHROPIC_CHOICE_FIELDS:
                return f"tool_choice.{name}: Extra inputs are not permitted"
        roles = [m["role"] for m in body["messages"]]
        if roles[0] != "user" or any(a == b for a, b in zip(roles, roles[1:], strict=False)):
            return "messages: roles must alternate between user and assistant, starting with user"
        for i, message in enumerate(body["messages"]):
            for j, block in enumerate(message["content"]):
                if block.get("type") == "image" and block["source"]["type"] not in (
                    "base64",
                    "url",
                ):
                    return f"messages.{i}.content.{j}.image.source: invalid"
        return None

    def want(self, body: dict[str, Any]) -> Want:
        choice = body.get("tool_choice") or {}
        tools = {t["name"]: t for t in body.get("tools") or []}
        if choice.get("type") == "tool":
            return Want(tool=(choice["name"], tools[choice["name"]]["input_schema"]))
        if choice.get("type") == "any" and tools:
            first = next(iter(tools.values()))
            return Want(tool=(first["name"], first["input_schema"]))
        return Want()

    def blocks(self, want: Want) -> tuple[list[dict[str, Any]], str]:
        if want.tool:
            block = {
                "type": "tool_use",
                "id": "toolu_fake1",
                "name": want.tool[0],
                "input": sample(want.tool[1]),
            }
            return [block], "tool_use"
        return [{"type": "text", "text": ANSWER}], "end_turn"

    def message(self, body: dict[str, Any], want: Want) -> httpx.Response:
        content, stop = self.blocks(want)
        return httpx.Response(
            200,
            json={
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
            },
        )

    def stream(self, body: dict[str, Any], want: Want) -> httpx.Response:
        content, stop = self.blocks(want)
        block = content[0]
        events: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
                },
            }
        ]
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        events += [
            {"type": "content_block_start", "index": 0, "content_block": start},
            {"type": "content_block_delta", "index": 0, "delta": delta},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": COMPLETION_TOKENS},
            },
            {"type": "message_stop"},
        ]
        return sse(events, named=True)
