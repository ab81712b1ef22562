"""Anthropic's Messages API on the gateway: the request's side.

POST /v1/messages takes Anthropic's request (https://docs.anthropic.com/en/api/messages) and
turns it into the internal chat request (OpenAI-shaped messages, `llm.types.ChatRequest`), so it
routes to any provider of the catalogue; anthropic_replies.py turns the result, or the stream of
normalised events, back into Anthropic's Message or its server-sent events.
POST /v1/messages/count_tokens answers {"input_tokens": N}
(https://docs.anthropic.com/en/api/messages-count-tokens), estimated, since models differ.

`output_config.format` (json_schema) becomes the structured-output response format.
Accepted and ignored (IGNORED_FIELDS), since no answer here depends on them: `thinking`,
`top_k`, `service_tier`, `speed`, `cache_control` (top level and on blocks), `output_config.effort`
and the like; thinking blocks sent back are dropped (no other provider can verify them).
Refused with a 400 naming the field: server tools, `mcp_servers`, `container`, documents.
Ours, beside Anthropic's fields: `cache` (true/false), as on /v1/chat/completions.
"""

from __future__ import annotations

import json
from typing import Any

from llm.api.errors import bad_request
from llm.api.parsing import ParsedChat
from llm.tokens import estimate_messages_tokens, estimate_tokens
from llm.types import ChatRequest

# Accepted and ignored: no answer here depends on them.
IGNORED_FIELDS = frozenset(
    {
        "top_k",
        "thinking",
        "service_tier",
        "context_management",
        "cache_control",
        "diagnostics",
        "inference_geo",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)

# The request's fields (the shape the API documentation describes).
MESSAGES_FIELDS = frozenset(
    {
        "model",  # str, required: a model of the catalogue or an alias
        "messages",  # [{"role": "user"|"assistant", "content": str | [block]}], required
        "max_tokens",  # int >= 1, required
        "system",  # str | [{"type": "text", "text": str}]
        "metadata",  # {"user_id": str}
        "stop_sequences",  # [str]
        "stream",  # bool
        "temperature",  # 0..1 (older clients)
        "top_p",  # 0..1 (older clients)
        "tools",  # [{"name", "description", "input_schema"}]
        "tool_choice",  # {"type": "auto"|"any"|"tool"|"none", "name"?}
        "output_config",  # {"format": {"type": "json_schema", "schema": {...}}, "effort"?}
        "cache",  # ours: bool
        *IGNORED_FIELDS,
    }
)
COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "output_config", *IGNORED_FIELDS}
)
UNSUPPORTED_FIELDS = frozenset({"mcp_servers", "container"})


# --- request ---------------------------------------------------------------------------------


def parse_messages(data: dict[str, Any]) -> ParsedChat:
    """An Anthropic Messages request -> the pipeline's ParsedChat; 400 names the field."""
    _check_fields(data, MESSAGES_FIELDS)
    max_tokens = data.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad_request("max_tokens: Field required (a positive integer).", "max_tokens")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream: must be true or false.", "stream")
    cache = data.get("cache")
    if cache is not None and not isinstance(cache, bool):
        raise bad_request("cache: must be true or false.", "cache")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata: must be an object.", "metadata")
    user = metadata.get("user_id")
    request = ChatRequest(
        model=_model(data),
        messages=translate_conversation(data.get("system"), data.get("messages")),
        max_tokens=max_tokens,
        temperature=_unit_number(data, "temperature"),
        top_p=_unit_number(data, "top_p"),
        stop=_stop_sequences(data),
        tools=translate_tools(data.get("tools")),
        tool_choice=translate_tool_choice(data.get("tool_choice")),
        response_format=translate_output_config(data.get("output_config")),
        stream=stream,
        user=user if isinstance(user, str) else None,
    )
    if request.tool_choice is not None and not request.tools:
        request.tool_choice = None  # providers refuse a tool_choice without tools
    if _parallel_disabled(data.get("tool_choice")) and request.tools:
        request.extra["parallel_tool_calls"] = False
    return ParsedChat(model=request.model, request=request, cache=cache, body=data)


def parse_count_tokens(data: dict[str, Any]) -> ParsedChat:
    _check_fields(data, COUNT_TOKENS_FIELDS)
    request = ChatRequest(
        model=_model(data),
        messages=translate_conversation(data.get("system"), data.get("messages")),
        tools=translate_tools(data.get("tools")),
    )
    return ParsedChat(model=request.model, request=request, body=data)


def count_input_tokens(parsed: ParsedChat) -> int:
    """The prompt's tokens as the reservation counts them, plus the tool definitions."""
    request = parsed.request
    tools = estimate_tokens(json.dumps(request.tools)) if request.tools else 0
    return estimate_messages_tokens(request.messages) + tools


def _check_fields(data: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in sorted(data):
        if name in UNSUPPORTED_FIELDS:
            raise bad_request(f"{name}: not supported by this gateway.", name)
        if name not in allowed:
            raise bad_request(f"{name}: Extra inputs are not permitted.", name)


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: Field required (a model name or an alias).", "model")
    return model


def _unit_number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad_request(f"{name}: must be a number from 0 to 1.", name)
    return float(value)


def _stop_sequences(data: dict[str, Any]) -> list[str] | None:
    stops = data.get("stop_sequences")
    if stops is None:
        return None
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad_request("stop_sequences: must be a list of non-empty strings.", "stop_sequences")
    return stops or None


def system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in system
    ):
        return "\n\n".join(b["text"] for b in system)
    raise bad_request("system: must be a string or a list of text blocks.", "system")


def translate_conversation(system: Any, messages: Any) -> list[dict[str, Any]]:
    """Anthropic's system + messages -> OpenAI chat messages.

    A user turn's tool_result blocks become `tool` messages (first, as OpenAI requires them
    right after the assistant's tool calls); its text and images stay a user message. An
    assistant turn's tool_use blocks become tool_calls."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: Field required (a non-empty list).", "messages")
    out: list[dict[str, Any]] = []
    if text := system_text(system):
        out.append({"role": "system", "content": text})
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(f"{where}.role: must be 'user' or 'assistant'.", f"{where}.role")
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip() and message["role"] == "user":
                raise bad_request(f"{where}.content: must not be empty.", f"{where}.content")
            out.append({"role": message["role"], "content": content})
        elif isinstance(content, list) and content:
            translate = _user_turn if message["role"] == "user" else _assistant_turn
            out.extend(translate(content, where))
        else:
            raise bad_request(
                f"{where}.content: must be a string or a non-empty list of blocks.",
                f"{where}.content",
            )
    return out


def _blocks(content: list[Any], where: str):
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise bad_request(f"{where}.content.{j}: must be a content block.", where)
        yield f"{where}.content.{j}", block


def _user_turn(content: list[Any], where: str) -> list[dict[str, Any]]:
    tool_messages, parts = [], []
    for path, block in _blocks(content, where):
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, path)})
        elif kind == "image":
            parts.append(_image_part(block, path))
        elif kind == "tool_result":
            text, images = _tool_result(block, path)
            tool_messages.append(
                {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}
            )
            parts.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise bad_request(f"{path}.type: '{kind}' blocks are not supported.", f"{path}.type")
    if not parts:
        return tool_messages
    if all(p["type"] == "text" for p in parts):
        user = {"role": "user", "content": "\n\n".join(p["text"] for p in parts)}
    else:
        user = {"role": "user", "content": parts}
    return [*tool_messages, user]


def _assistant_turn(content: list[Any], where: str) -> list[dict[str, Any]]:
    texts, calls = [], []
    for path, block in _blocks(content, where):
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, path))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise bad_request(f"{path}: a tool_use block needs 'id' and 'name'.", path)
            arguments = json.dumps(block.get("input") or {})
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # a provider's own signed reasoning; no other provider can take it back
        else:
            raise bad_request(f"{path}.type: '{kind}' blocks are not supported.", f"{path}.type")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return [message]


def _text(block: dict[str, Any], path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise bad_request(f"{path}.text: Field required.", f"{path}.text")
    return text


def _image_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64" and source.get("media_type") and source.get("data"):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url" and source.get("url"):
        url = source["url"]
    else:
        raise bad_request(f"{path}.source: a base64 or url image source is required.", path)
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], path: str) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text (marked when it is an error) and any images it carries."""
    if not isinstance(block.get("tool_use_id"), str):
        raise bad_request(f"{path}.tool_use_id: Field required.", f"{path}.tool_use_id")
    content = block.get("content", "")
    texts, images = [], []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for sub_path, sub in _blocks(content, path):
            if sub["type"] == "text":
                texts.append(_text(sub, sub_path))
            elif sub["type"] == "image":
                images.append(_image_part(sub, sub_path))
            else:
                raise bad_request(f"{sub_path}.type: only text and images.", f"{sub_path}.type")
    else:
        raise bad_request(f"{path}.content: must be a string or a list.", f"{path}.content")
    text = "\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"  # chat-completions tool messages carry no error flag
    return text, images


def translate_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("tools: must be a list.", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise bad_request(f"{where}: must be an object.", where)
        if tool.get("type") not in (None, "custom"):
            raise bad_request(
                f"{where}.type: server tools ('{tool.get('type')}') are not supported; "
                "define the tool with name, description and input_schema.",
                f"{where}.type",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad_request(f"{where}.name: Field required.", f"{where}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise bad_request(f"{where}.input_schema: Field required.", f"{where}.input_schema")
        function = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out or None


def translate_tool_choice(choice: Any) -> Any:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    kind = kind if isinstance(kind, str) else None  # untrusted JSON: a list is not a type
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    simple = {"auto": "auto", "any": "required", "none": "none"}
    if kind in simple:
        return simple[kind]
    raise bad_request(
        "tool_choice: must be {'type': 'auto'|'any'|'none'} or {'type': 'tool', 'name': ...}.",
        "tool_choice",
    )


def translate_output_config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise bad_request("output_config.format.type: must be 'json_schema'.", "output_config")
    if not isinstance(fmt.get("schema"), dict):
        raise bad_request("output_config.format.schema: Field required.", "output_config")
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt["schema"]}}


def _parallel_disabled(choice: Any) -> bool:
    return isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True
