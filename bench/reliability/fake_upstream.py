"""A fake upstream with fault modes: two OpenAI-dialect providers and the Stripe subscriptions API.

Served by uvicorn as a plain ASGI app. `/<provider>/v1/chat/completions` (one path per provider of
`catalogue.py`) speaks OpenAI's chat completions dialect
(https://platform.openai.com/docs/api-reference/chat/create, errors as in
https://platform.openai.com/docs/guides/error-codes): a bearer key is required (401
`invalid_api_key` otherwise), `model` and a non-empty `messages` list of objects with a known
`role` are required (400 `invalid_request_error` naming the param otherwise), a stream sends
`chat.completion.chunk` events and the usage chunk only when `stream_options.include_usage` is
set, then `data: [DONE]`.

`GET /v1/subscriptions/{id}` answers like Stripe's retrieve
(https://docs.stripe.com/api/subscriptions/retrieve), with the state the suite stored, or a 500
`api_error` when told to fail.

Each provider has its own fault state. The suite steers it over HTTP: `POST /_control` merges
`{provider: {mode, ...}}`,
`GET /_stats` returns the call times per provider, `POST /_reset` forgets both.
Modes: ok, 5xx, 429 (with `retry_after`), silence (never answers), stall (a few chunks, then
nothing), truncate (a stream cut before its end; a JSON body cut in half), huge (`huge_mb` of
content), absurd (usage numbers no model can produce).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from catalogue import PROVIDERS, api_key

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
ABSURD_USAGE = {
    "prompt_tokens": 10**15,
    "completion_tokens": 10**15,
    "total_tokens": 2 * 10**15,
}
DEFAULT = {"mode": "ok", "retry_after": 5, "chunk_delay": 0.0, "delay": 0.0, "huge_mb": 50}

state: dict[str, Any] = {}


def reset() -> None:
    state.clear()
    for provider in PROVIDERS:
        state[provider] = dict(DEFAULT)
    state["stripe"] = {"fail": False, "subscriptions": {}}
    state["calls"] = {name: [] for name in (*PROVIDERS, "stripe")}


reset()


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    body = await read_body(receive)
    if path == "/_control" and method == "POST":
        for name, values in json.loads(body or b"{}").items():
            state[name].update(values)
        return await send_json(send, 200, {"ok": True})
    if path == "/_reset" and method == "POST":
        reset()
        return await send_json(send, 200, {"ok": True})
    if path == "/_stats":
        return await send_json(send, 200, state["calls"])
    if path.startswith("/v1/subscriptions/") and method == "GET":
        return await stripe_subscription(scope, send, path.rsplit("/", 1)[1])
    provider, _, rest = path.lstrip("/").partition("/")
    if provider in PROVIDERS and rest == "v1/chat/completions" and method == "POST":
        return await chat(provider, scope, body, receive, send)
    await send_json(send, 404, error("Unknown request URL.", "invalid_request_error", None))


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def header(scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def error(message: str, kind: str, param: str | None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def send_json(send, status: int, body: Any, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send_head(send, status, "application/json", [*(headers or [])], len(data))
    await send({"type": "http.response.body", "body": data})


async def send_head(send, status: int, content_type: str, headers: list, length=None) -> None:
    head = [(b"content-type", content_type.encode()), *headers]
    if length is not None:
        head.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})


def validate(provider: str, scope, body: bytes) -> tuple[int, dict] | dict:
    if header(scope, b"authorization") != f"Bearer {api_key(provider)}":
        return 401, error(
            "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"
        )
    try:
        request = json.loads(body)
    except ValueError:
        return 400, error(
            "We could not parse the JSON body of your request.", "invalid_request_error", None
        )
    if not isinstance(request, dict):
        return 400, error("The body must be a JSON object.", "invalid_request_error", None)
    if not isinstance(request.get("model"), str) or not request["model"]:
        return 400, error("you must provide a model parameter", "invalid_request_error", "model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, error(
            "'messages' must be a non-empty array.", "invalid_request_error", "messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            param = f"messages[{index}].role"
            return 400, error(f"Invalid value for '{param}'.", "invalid_request_error", param)
    return request


async def chat(provider: str, scope, body: bytes, receive, send) -> None:
    checked = validate(provider, scope, body)
    if isinstance(checked, tuple):
        return await send_json(send, *checked)
    request, fault = checked, state[provider]
    state["calls"][provider].append(time.time())
    mode = fault["mode"]
    if fault["delay"]:
        await asyncio.sleep(fault["delay"])
    if mode == "5xx":
        message = "The server had an error while processing your request. Sorry about that!"
        return await send_json(send, 500, error(message, "server_error", None))
    if mode == "429":
        retry = [(b"retry-after", str(fault["retry_after"]).encode())]
        message = "Rate limit reached for requests."
        body = error(message, "requests", None, "rate_limit_exceeded")
        return await send_json(send, 429, body, retry)
    if mode == "silence":
        return await until_disconnect(receive)
    usage = ABSURD_USAGE if mode == "absurd" else USAGE
    if request.get("stream"):
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return await stream(
            send, receive, request["model"], fault, usage if include_usage else None
        )
    return await complete(send, receive, request["model"], fault, usage)


async def until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def completion(model: str, content: str, usage: dict) -> dict:
    return {
        "id": "chatcmpl-rel",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


async def complete(send, receive, model: str, fault: dict, usage: dict) -> None:
    mode = fault["mode"]
    if mode == "huge":
        return await huge_completion(send, model, fault["huge_mb"])
    data = json.dumps(completion(model, "".join(WORDS), usage)).encode()
    if mode == "truncate":
        return await send_json_bytes(send, data[: len(data) // 2])
    if mode == "stall":
        await send_head(send, 200, "application/json", [], len(data))
        await send({"type": "http.response.body", "body": data[:20], "more_body": True})
        return await until_disconnect(receive)
    await send_json_bytes(send, data)


async def send_json_bytes(send, data: bytes) -> None:
    await send_head(send, 200, "application/json", [], len(data))
    await send({"type": "http.response.body", "body": data})


async def huge_completion(send, model: str, megabytes: int) -> None:
    """One completion whose content is `megabytes` MB of text, sent in 1 MB pieces."""
    head, tail = json.dumps(completion(model, "\x00", USAGE)).encode().split(b"\\u0000")
    piece = b"x" * 1_000_000
    await send_head(
        send, 200, "application/json", [], len(head) + len(tail) + megabytes * len(piece)
    )
    await send({"type": "http.response.body", "body": head, "more_body": True})
    for _ in range(megabytes):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": tail})


def chunk(model: str, delta: dict | None, finish: str | None = None, usage=None) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    event = {
        "id": "chatcmpl-rel",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def stream(send, receive, model: str, fault: dict, usage: dict | None) -> None:
    mode = fault["mode"]
    await send_head(send, 200, "text/event-stream", [(b"cache-control", b"no-cache")])

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
        if fault["chunk_delay"]:
            await asyncio.sleep(fault["chunk_delay"])

    await emit(chunk(model, {"role": "assistant", "content": ""}))
    if mode == "huge":
        piece = chunk(model, {"content": "x" * 65_000})
        for _ in range(fault["huge_mb"] * 16):
            await emit(piece)
    words = WORDS[:3] if mode in ("stall", "truncate") else WORDS
    for word in words:
        await emit(chunk(model, {"content": word}))
    if mode == "stall":
        return await until_disconnect(receive)
    if mode == "truncate":
        return await send({"type": "http.response.body", "body": b'data: {"id": "chatc'})
    await emit(chunk(model, {}, "stop"))
    if usage is not None:
        await emit(chunk(model, None, usage=usage))
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def stripe_subscription(scope, send, subscription_id: str) -> None:
    stripe = state["stripe"]
    state["calls"]["stripe"].append(time.time())
    if not header(scope, b"authorization").startswith("Bearer sk_"):
        body = {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        return await send_json(send, 401, body)
    if stripe["fail"]:
        body = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
        return await send_json(send, 500, body)
    subscription = stripe["subscriptions"].get(subscription_id)
    if subscription is None:
        message = f"No such subscription: '{subscription_id}'"
        body = {
            "error": {
                "type": "invalid_request_error",
                "message": message,
                "code": "resource_missing",
            }
        }
        return await send_json(send, 404, body)
    await send_json(send, 200, subscription)
