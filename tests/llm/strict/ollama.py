"""A fake of Ollama's /api/chat."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.llm.strict.answers import COMPLETION_TOKENS, PROMPT_TOKENS, Want, error


@dataclass
class Ollama:
    """/api/chat: https://github.com/ollama/ollama/blob/main/docs/api.md. Unknown JSON fields are
    ignored (Go's decoder), but images must be base64 (no URLs) and a missing model answers 404
    {"error": ...}. Usage: prompt_eval_count and eval_count on the final (done) line."""

    provider: str = "ollama"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path != "/api/chat":
            return error(404, {"error": "404 page not found"})
        for message in body.get("messages") or []:
            for image in message.get("images") or []:
                if image.startswith(("http://", "https://")):
                    return error(400, {"error": "illegal base64 data at input byte 4"})
        want = Want()
        fmt = body.get("format")
        if isinstance(fmt, dict):
            want.json_schema = fmt
        want.json = fmt == "json"
        done = {
            "model": body["model"],
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": PROMPT_TOKENS,
            "eval_count": COMPLETION_TOKENS,
        }
        if not body.get("stream", True):
            done["message"]["content"] = want.text()
            return httpx.Response(200, json=done)
        first = {**done, "done": False, "message": {"role": "assistant", "content": want.text()}}
        for key in ("done_reason", "prompt_eval_count", "eval_count"):
            first.pop(key)
        lines = json.dumps(first) + "\n" + json.dumps(done) + "\n"
        return httpx.Response(
            200, headers={"content-type": "application/x-ndjson"}, content=lines.encode()
        )
