"""Step 2 of the pipeline: JSON body -> a typed request, or a 400 naming the field (413 if huge)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from llm.api.errors import ApiError, bad_request
from llm.json_codec import decode_json
from llm.types import ChatRequest

ROLES = {"system", "developer", "user", "assistant", "tool"}
# Fields OpenAI defines that we pass to OpenAI-dialect providers untouched.
PASSTHROUGH = {
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "reasoning_effort",
    "service_tier",
    "store",
    "metadata",
    "prediction",
    "modalities",
    "verbosity",
    "web_search_options",
}
CHAT_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "stream",
    "stream_options",
    "user",
    "seed",
    "n",
    "cache",  # ours: force the response cache on (true) or off (false) for this request
} | PASSTHROUGH


@dataclass
class ParsedChat:
    model: str
    request: ChatRequest
    include_usage: bool = False
    cache: bool | None = None  # None: the default policy decides
    extra: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # as sent: the response cache's key


def check_body_size(request) -> None:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"Request body is {int(declared)} bytes; the limit is {limit} bytes.",
            code="request_too_large",
        )


# A \uD800-\uDFFF escape is the only way a lone surrogate gets into a parsed body.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def check_content_type(request) -> None:
    """A body that says it is not JSON is refused, not guessed at (no header: assumed JSON)."""
    declared = request.headers.get("Content-Type", "")
    kind = declared.split(";", 1)[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415,
            f"Content-Type {kind!r} is not supported: send 'application/json'.",
            code="unsupported_media_type",
        )


def load_json(request) -> dict[str, Any]:
    check_content_type(request)
    check_body_size(request)
    body = request.body
    if len(body) > settings.GATEWAY_MAX_BODY_BYTES:
        raise ApiError(413, f"Request body exceeds {settings.GATEWAY_MAX_BODY_BYTES} bytes.")
    try:
        data = decode_json(body or b"null")
    except RecursionError:
        raise too_deep(settings.GATEWAY_MAX_JSON_DEPTH) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Malformed JSON body: {exc}.") from None
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    if body.count(b"[") + body.count(b"{") > settings.GATEWAY_MAX_JSON_DEPTH:
        check_depth(data, limit=settings.GATEWAY_MAX_JSON_DEPTH)
    if SURROGATE_ESCAPE.search(body):
        check_encodable(data)
    return data


def check_depth(value: Any, *, limit: int) -> None:
    """Refuse JSON nested deeper than limit (iterative: a deep body cannot exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise too_deep(limit)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def too_deep(limit: int) -> ApiError:
    return bad_request(f"The JSON body is nested too deeply (the limit is {limit} levels).")


def check_encodable(data: Any) -> None:
    """A lone UTF-16 surrogate (\\ud800) parses, but no provider can be sent it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            "The body contains a lone UTF-16 surrogate escape (\\uD800-\\uDFFF): not valid text."
        ) from None


def _number(data, name, low, high) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a number from {low} to {high}.", name)
    return float(value)


def _positive_int(data, name) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{name}' must be a positive integer.", name)
    return value


def _stop(data) -> list[str] | None:
    stop = data.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return stop
    raise bad_request("'stop' must be a string or a list of up to 4 strings.", "stop")


def check_messages(messages: Any, param: str = "messages") -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise bad_request(f"'{param}' must be a non-empty list of messages.", param)
    if len(messages) > settings.GATEWAY_MAX_MESSAGES:
        raise bad_request(
            f"'{param}' has {len(messages)} messages; "
            f"the limit is {settings.GATEWAY_MAX_MESSAGES}.",
            param,
        )
    for i, message in enumerate(messages):
        where = f"{param}[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"'{where}' must be an object.", where)
        if message.get("role") not in ROLES:
            raise bad_request(
                f"'{where}.role' must be one of {', '.join(sorted(ROLES))}.", f"{where}.role"
            )
        content = message.get("content")
        if content is None and not message.get("tool_calls"):
            raise bad_request(f"'{where}.content' is required.", f"{where}.content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(
                f"'{where}.content' must be a string or a list of parts.", f"{where}.content"
            )
        if isinstance(content, str) and not content.strip() and message["role"] == "user":
            raise bad_request(f"'{where}.content' is empty.", f"{where}.content")
    return messages


def check_schema_size(schema: dict[str, Any], param: str) -> None:
    """A JSON Schema is bounded in bytes and nesting before anything walks it."""
    size = len(json.dumps(schema).encode())
    if size > settings.GATEWAY_MAX_SCHEMA_BYTES:
        raise bad_request(
            f"'{param}' is {size} bytes; the limit is {settings.GATEWAY_MAX_SCHEMA_BYTES}.", param
        )
    try:
        check_depth(schema, limit=settings.GATEWAY_MAX_SCHEMA_DEPTH)
    except ApiError:
        raise bad_request(
            f"'{param}' is nested too deeply (the limit is {settings.GATEWAY_MAX_SCHEMA_DEPTH}).",
            param,
        ) from None


def _tools(data) -> list[dict[str, Any]] | None:
    tools = data.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list.", "tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_request(f"'tools[{i}].function.name' is required.", f"tools[{i}].function")
    return tools


def _response_format(data) -> dict[str, Any] | None:
    fmt = data.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in {"text", "json_object", "json_schema"}:
        raise bad_request(
            "'response_format.type' must be text, json_object or json_schema.", "response_format"
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise bad_request(
                "'response_format.json_schema.schema' must be a JSON Schema object.",
                "response_format.json_schema.schema",
            )
        check_schema_size(spec["schema"], "response_format.json_schema.schema")
    return None if kind == "text" else fmt


def parse_chat(data: dict[str, Any]) -> ParsedChat:
    unknown = sorted(set(data) - CHAT_FIELDS)
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}'.", unknown[0])
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: a model name or an alias.", "model")
    if data.get("n") not in (None, 1):
        raise bad_request("Only 'n': 1 is supported.", "n")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    cache = data.get("cache")
    if cache is not None and not isinstance(cache, bool):
        raise bad_request("'cache' must be true or false.", "cache")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("'seed' must be an integer.", "seed")
    request = ChatRequest(
        model=model,
        messages=check_messages(data.get("messages")),
        max_tokens=_positive_int(data, "max_completion_tokens")
        or _positive_int(data, "max_tokens"),
        temperature=_number(data, "temperature", 0, 2),
        top_p=_number(data, "top_p", 0, 1),
        stop=_stop(data),
        tools=_tools(data),
        tool_choice=data.get("tool_choice"),
        response_format=_response_format(data),
        stream=stream,
        user=data.get("user") if isinstance(data.get("user"), str) else None,
        seed=seed,
        extra={k: data[k] for k in PASSTHROUGH if k in data},
    )
    return ParsedChat(
        model=model,
        request=request,
        include_usage=bool(options.get("include_usage")),
        cache=cache,
        body=data,
    )


GENERATE_FIELDS = {
    "model",
    "prompt",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "cache",
    "schema",
    "schema_name",
}


def parse_generate(data: dict[str, Any], *, structured: bool = False) -> ParsedChat:
    """The original generate API: a prompt (or messages), a model name or alias."""
    unknown = sorted(set(data) - GENERATE_FIELDS)
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}'.", unknown[0])
    prompt, messages = data.get("prompt"), data.get("messages")
    if prompt is not None and messages is not None:
        raise bad_request("Send either 'prompt' or 'messages', not both.", "prompt")
    if messages is None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise bad_request("'prompt' is required (a non-empty string) or 'messages'.", "prompt")
        messages = [{"role": "user", "content": prompt}]
    messages = check_messages(messages)
    system = data.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise bad_request("'system' must be a string.", "system")
        messages = [{"role": "system", "content": system}, *messages]
    if structured and not isinstance(data.get("schema"), dict):
        raise bad_request("'schema' must be a JSON Schema object.", "schema")
    if structured:
        check_schema_size(data["schema"], "schema")
    body = {
        "model": data.get("model") or "balanced",
        "messages": messages,
        **{
            k: data[k] for k in ("max_tokens", "temperature", "top_p", "stop", "cache") if k in data
        },
    }
    parsed = parse_chat(body)
    if structured:
        parsed.extra = {"schema": data["schema"], "schema_name": data.get("schema_name")}
    return parsed
