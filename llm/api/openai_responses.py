"""OpenAI's Responses API on the gateway: its wire format to and from the pipeline's own.

POST /v1/responses takes the Responses request
(https://platform.openai.com/docs/api-reference/responses/create): `input` as a string or as
items (messages, function_call, function_call_output), `instructions`, function `tools`,
`tool_choice`, `text.format` (text, json_object, json_schema), `max_output_tokens`, and turns it
into the internal chat request, so it routes to any provider of the catalogue. The result comes
back (openai_response_objects.py) as a Response object; a stream as the documented events
(https://platform.openai.com/docs/api-reference/responses-streaming): response.created,
response.in_progress, then per output item response.output_item.added, for a message
response.content_part.added, response.output_text.delta ... .done, response.content_part.done,
for a function call response.function_call_arguments.delta ... .done, then
response.output_item.done, and last response.completed (or response.incomplete) with usage, or
response.failed when the upstream broke.

Nothing is stored: every response says `"store": false`, whatever the request asked, and
`previous_response_id` (like `conversation` and item references) is refused with a 400 that
says to send the whole conversation in `input`, which is what `store: false` clients do.
Accepted and ignored: `reasoning`, `include`, `prompt_cache_key`, `safety_identifier`,
`service_tier`, `truncation`, `top_logprobs`, `max_tool_calls`, `stream_options`,
`text.verbosity`. Ours: `cache` (true/false), as on /v1/chat/completions.
"""

from __future__ import annotations

from typing import Any

from llm.api.errors import ApiError, bad_request
from llm.api.parsing import ParsedChat
from llm.types import ChatRequest

RESPONSES_FIELDS = frozenset(
    {
        "model",  # str, required
        "input",  # str | [item], required
        "instructions",  # str: a system message before the input
        "tools",  # [{"type": "function", "name", "description", "parameters", "strict"}]
        "tool_choice",  # "auto"|"none"|"required"|{"type": "function", "name"}
        "text",  # {"format": {"type": "text"|"json_object"|"json_schema", ...}}
        "max_output_tokens",  # int >= 1
        "temperature",  # 0..2
        "top_p",  # 0..1
        "stream",  # bool
        "store",  # bool; never stored here
        "metadata",  # echoed back
        "parallel_tool_calls",  # bool
        "user",  # str
        "cache",  # ours: bool
        # accepted, ignored:
        "reasoning",
        "include",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
        "truncation",
        "top_logprobs",
        "max_tool_calls",
        "stream_options",
    }
)
NEEDS_STORAGE = {
    "previous_response_id": "previous_response_id",
    "conversation": "conversation",
    "prompt": "stored prompts ('prompt')",
}


def no_storage(name: str) -> ApiError:
    return ApiError(
        400,
        f"{NEEDS_STORAGE.get(name, name)} is not supported: this gateway does not store "
        "responses (every response is store: false). Send the whole conversation in 'input', "
        "including earlier function_call and function_call_output items.",
        param=name,
        code="unsupported_parameter",
    )


# --- request ---------------------------------------------------------------------------------


def parse_responses(data: dict[str, Any]) -> ParsedChat:
    """A Responses request -> the pipeline's ParsedChat; 400 names the field."""
    for name in sorted(data):
        if name in NEEDS_STORAGE and data[name] is not None:
            raise no_storage(name)
        if name == "background" and data[name]:
            raise bad_request("'background' responses are not supported.", "background")
        if name not in RESPONSES_FIELDS | set(NEEDS_STORAGE) | {"background"}:
            raise bad_request(f"Unknown parameter: '{name}'.", name)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: a model name or an alias.", "model")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    cache = data.get("cache")
    if cache is not None and not isinstance(cache, bool):
        raise bad_request("'cache' must be true or false.", "cache")
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be a string.", "instructions")
    messages = translate_input(data.get("input"))
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    tools = translate_tools(data.get("tools"))
    request = ChatRequest(
        model=model,
        messages=messages,
        max_tokens=_max_output_tokens(data),
        temperature=_number(data, "temperature", 2),
        top_p=_number(data, "top_p", 1),
        tools=tools,
        tool_choice=translate_tool_choice(data.get("tool_choice")) if tools else None,
        response_format=translate_text_format(data.get("text")),
        stream=stream,
        user=data.get("user") if isinstance(data.get("user"), str) else None,
    )
    if tools and isinstance(data.get("parallel_tool_calls"), bool):
        request.extra["parallel_tool_calls"] = data["parallel_tool_calls"]
    return ParsedChat(model=model, request=request, cache=cache, body=data)


def _number(data: dict[str, Any], name: str, high: int) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise bad_request(f"'{name}' must be a number from 0 to {high}.", name)
    return float(value)


def _max_output_tokens(data: dict[str, Any]) -> int | None:
    value = data.get("max_output_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("'max_output_tokens' must be a positive integer.", "max_output_tokens")
    return value


def translate_input(items: Any) -> list[dict[str, Any]]:
    """`input` -> OpenAI chat messages. Consecutive function_call items become one assistant
    message with tool_calls; each function_call_output becomes a `tool` message."""
    if isinstance(items, str):
        if not items.strip():
            raise bad_request("'input' is empty.", "input")
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise bad_request("'input' must be a string or a non-empty list of items.", "input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"'{where}' must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            last = out[-1] if out else None
            if last and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last and last["role"] == "assistant" and last.get("content") is not None:
                last["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append(_function_call_output(item, where))
        elif kind == "reasoning":
            continue  # a provider's own reasoning; nothing another provider can take back
        elif kind == "item_reference":
            raise no_storage("item_reference")
        else:
            raise bad_request(
                f"'{where}.type' {kind!r} is not supported: use messages, function_call and "
                "function_call_output items.",
                f"{where}.type",
            )
    if not out:
        raise bad_request("'input' has no message.", "input")
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise bad_request(
            f"'{where}.role' must be user, system, developer or assistant.", f"{where}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad_request(
            f"'{where}.content' must be a string or a list of parts.", f"{where}.content"
        )
    parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    if role != "user":
        raise bad_request(f"'{where}.content': images only in user messages.", f"{where}.content")
    return {"role": role, "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise bad_request(
        f"'{where}' must be an input_text, output_text or input_image (with image_url) part.",
        where,
    )


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise bad_request(f"'{where}.{name}' is required (a string).", f"{where}.{name}")
    return {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }


def _function_call_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(item.get("call_id"), str):
        raise bad_request(f"'{where}.call_id' is required (a string).", f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        parts = [_part(p, f"{where}.output[{j}]") for j, p in enumerate(output)]
        # A chat tool message carries text only: images beside the text are left out.
        output = "".join(p["text"] for p in parts if p["type"] == "text")
        if len(output) == 0 and parts:
            raise bad_request(f"'{where}.output' carries no text.", f"{where}.output")
    if not isinstance(output, str):
        raise bad_request(f"'{where}.output' must be a string.", f"{where}.output")
    return {"role": "tool", "tool_call_id": item["call_id"], "content": output}


def translate_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list.", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise bad_request(
                f"'{where}.type' {kind!r} is not supported: only function tools.", f"{where}.type"
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad_request(f"'{where}.name' is required.", f"{where}.name")
        function: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out or None


def translate_tool_choice(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("name"), str)
        and choice["name"]
    ):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad_request(
        "'tool_choice' must be auto, none, required or {'type': 'function', 'name': ...}.",
        "tool_choice",
    )


def translate_text_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        spec = {"name": fmt.get("name") or "response", "schema": fmt["schema"]}
        for name in ("strict", "description"):
            if name in fmt:
                spec[name] = fmt[name]
        return {"type": "json_schema", "json_schema": spec}
    raise bad_request(
        "'text.format' must be {'type': 'text'}, {'type': 'json_object'} or "
        "{'type': 'json_schema', 'name': ..., 'schema': {...}}.",
        "text.format",
    )
