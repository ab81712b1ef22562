"""POST /v1/embeddings: the same pipeline as chat, for providers that have embeddings."""

from __future__ import annotations

import base64
import struct

from django.http import HttpResponse

from llm import failover
from llm.api import pipeline
from llm.api.errors import bad_request
from llm.api.parsing import ParsedChat, load_json
from llm.api.views import api_view
from llm.types import ChatRequest

MAX_INPUTS = 2048


def encode(vector: list[float], encoding: str) -> list[float] | str:
    """OpenAI's base64 form: little-endian float32s (the official SDK asks for it)."""
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def parse_embeddings(data: dict) -> tuple[ParsedChat, list[str]]:
    unknown = sorted(set(data) - {"model", "input", "encoding_format", "dimensions", "user"})
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}'.", unknown[0])
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required.", "model")
    inputs = data.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not inputs
        or len(inputs) > MAX_INPUTS
        or not all(isinstance(i, str) and i for i in inputs)
    ):
        raise bad_request(
            f"'input' must be a non-empty string or a list of 1 to {MAX_INPUTS} non-empty strings.",
            "input",
        )
    if data.get("encoding_format", "float") not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    # A chat-shaped request lets the shared steps (routing, reservation) treat it alike.
    request = ChatRequest(
        model=model,
        messages=[{"role": "user", "content": " ".join(inputs)}],
        max_tokens=None,
    )
    return ParsedChat(model=model, request=request, body=data), inputs


@api_view("embeddings")
async def create_embeddings(call, request) -> HttpResponse:
    await pipeline.authenticate_call(call, request)
    call.parsed, inputs = parse_embeddings(load_json(request))
    await pipeline.route(call, frozenset({"embeddings"}))
    await pipeline.admit(call, output_tokens=0)
    vectors, model, outcome = await embed(call, inputs)
    encoding = call.parsed.body.get("encoding_format", "float")
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(vector, encoding)}
            for i, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {
            "prompt_tokens": outcome.usage.input_tokens,
            "total_tokens": outcome.usage.input_tokens,
        },
    }
    return pipeline.respond_json(call, outcome, body)


async def embed(call, inputs: list[str]):
    """Vectors from the response cache (embeddings are deterministic: cached by default), or
    from the provider, then stored."""
    cached = await pipeline.lookup_cache(call)
    if cached is not None:
        outcome = pipeline.served_from_cache(call, cached)
        return cached.vectors, cached.model or call.parsed.model, outcome
    result, info = await failover.embed(
        call.plan,
        inputs,
        deadline=pipeline.deadline(),
        policy=pipeline.retry_policy(),
        route=pipeline.new_route(call),
    )
    await pipeline.store_cache(call, result)
    return (
        result.vectors,
        info.served_model or call.parsed.model,
        pipeline.served(call, (info.charge,)),
    )
