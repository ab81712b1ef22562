"""Strict fakes of every provider of the shipped catalogue, one httpx transport for all of them.

Each fake is built from its provider's documented request schema and errors (the page is cited
in each class): it refuses the fields the provider refuses, answers with the provider's real error
body and status, and reports usage the provider's way (on the last chunk unasked, only when
asked with stream_options, in x_groq, in message_delta, in usageMetadata, ...). Answers follow
the request: a forced or required tool gets a call whose arguments fit the tool's schema, a JSON
response format gets JSON that fits its schema, anything else gets a sentence.

Use `StrictUpstreams().client()` where the gateway's httpx client goes; `requests` records every
request as (provider, path, body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from llm.http import build_client
from tests.llm.strict.answers import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, error
from tests.llm.strict.anthropic import Anthropic
from tests.llm.strict.cohere import Cohere
from tests.llm.strict.gemini import Gemini
from tests.llm.strict.ollama import Ollama
from tests.llm.strict.openai_family import openai_family
from tests.llm.strict.perplexity import Perplexity

__all__ = ["ANSWER", "COMPLETION_TOKENS", "PROMPT_TOKENS", "StrictUpstreams"]


@dataclass
class StrictUpstreams:
    """Every provider of the shipped catalogue behind one transport, routed by host."""

    by_host: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_host = {
            **openai_family(),
            "api.anthropic.com": Anthropic(),
            "generativelanguage.googleapis.com": Gemini(),
            "api.cohere.com": Cohere(),
            "localhost": Ollama(),
            "api.perplexity.ai": Perplexity(),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        fake = self.by_host.get(request.url.host)
        body = json.loads(request.content) if request.content else {}
        if fake is None:
            return error(502, {"error": f"no fake for {request.url.host}"})
        self.requests.append((fake.provider, request.url.path, body))
        return fake.handle(request, body)

    def sent_to(self, provider: str) -> list[Any]:
        return [body for name, _path, body in self.requests if name == provider]

    def client(self) -> httpx.AsyncClient:
        return build_client(transport=httpx.MockTransport(self.handle))
