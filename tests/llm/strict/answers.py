"""Answers that follow the request (a tool call fitting the tool's schema, JSON fitting the
response format, or a sentence), and the reply helpers every strict fake shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

ANSWER = "Paris is the capital of France."
PROMPT_TOKENS, COMPLETION_TOKENS = 21, 7


# --- answers that follow the request ------------------------------------------------------


def sample(schema: Any) -> Any:
    """A small value valid against a (strict-tool-style) JSON schema."""
    if not isinstance(schema, dict):
        return "x"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return sample(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: sample(props[name]) for name in schema.get("required", list(props))}
    if kind == "array":
        return [sample(schema.get("items") or {})]
    return {"string": "Paris", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(
        kind, "x"
    )


@dataclass
class Want:
    """What the caller asked for, dialect-neutral: a tool call, JSON, or text."""

    tool: tuple[str, dict[str, Any]] | None = None  # (name, schema)
    json_schema: dict[str, Any] | None = None
    json: bool = False

    def text(self) -> str:
        if self.json_schema is not None:
            return json.dumps(sample(self.json_schema))
        return json.dumps({"answer": ANSWER}) if self.json else ANSWER

    def arguments(self) -> str:
        return json.dumps(sample(self.tool[1])) if self.tool else "{}"


def error(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def sse(events: list[Any], *, done: str | None = None, named: bool = False) -> httpx.Response:
    lines = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}\n")
        lines.append(f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append(f"data: {done}\n\n")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode()
    )


def names(text: str) -> frozenset[str]:
    """A documented field list, written as one space-separated string."""
    return frozenset(text.split())
