"""A strict fake of Perplexity's Agent API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.llm.strict.answers import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, error, names, sse
from tests.llm.strict.openai_family import openai_error

PERPLEXITY_FIELDS = names(
    "model models preset input instructions max_output_tokens max_steps temperature "
    "stream tools reasoning response_format language_preference"
)


@dataclass
class Perplexity:
    """The Agent API: POST /v1/agent, https://docs.perplexity.ai/api-reference/agent-post
    (Responses format). Sonar chat completions ended on 2026-09-27
    (https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/how-to): the old path answers
    410. Usage: input_tokens, output_tokens and a cost breakdown, on the response or on
    response.completed."""

    provider: str = "perplexity"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            message = "Sonar chat completions ended on 2026-09-27; use the Agent API (/v1/agent)."
            return error(410, openai_error(message))
        if request.url.path != "/v1/agent":
            return error(404, openai_error("Not found"))
        for name in body:
            if name not in PERPLEXITY_FIELDS:
                return error(400, openai_error(f"Unknown parameter: '{name}'", name))
        if not isinstance(body.get("input"), str | list):
            return error(400, openai_error("'input' is required", "input"))
        if not (body.get("model") or body.get("preset") or body.get("models")):
            return error(400, openai_error("one of model, models or preset is required"))
        response = {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1_750_000_000,
            "model": body.get("model") or "openai/gpt-5.1",
            "status": "completed",
            "output": [
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {
                            "type": "output_text",
                            "text": ANSWER,
                            "annotations": [
                                {
                                    "type": "url_citation",
                                    "url": "https://en.wikipedia.org/wiki/Paris",
                                }
                            ],
                        }
                    ],
                }
            ],
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "output_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                "cost": {"currency": "USD", "total_cost": 0.0051, "tool_calls_cost": 0.005},
            },
        }
        if not body.get("stream"):
            return httpx.Response(200, json=response)
        events = [
            {"type": "response.created", "response": {**response, "status": "in_progress"}},
            {"type": "response.output_text.delta", "delta": ANSWER[:10]},
            {"type": "response.output_text.delta", "delta": ANSWER[10:]},
            {"type": "response.completed", "response": response},
        ]
        return sse(events, named=True)
