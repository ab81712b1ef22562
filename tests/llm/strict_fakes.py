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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from llm.http import build_client

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


# --- OpenAI chat completions and the providers that copy it --------------------------------

OPENAI_FIELDS = frozenset(
    [
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)
REASONING_ONLY_DEFAULTS = ("temperature", "top_p")
REASONING_UNSUPPORTED = (
    "max_tokens",
    "stop",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
)


LOGPROBS = {
    "content": [
        {"token": "Paris", "logprob": -0.01, "bytes": [80, 97, 114, 105, 115], "top_logprobs": []}
    ],
    "refusal": None,
}


def openai_error(message: str, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def want_openai(body: dict[str, Any]) -> Want:
    want = Want()
    tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or []}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        want.tool = (name, tools.get(name, {}).get("parameters") or {})
    elif choice in ("required", "any") and tools:
        first = next(iter(tools.values()))
        want.tool = (first["name"], first.get("parameters") or {})
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        want.json_schema = fmt["json_schema"]["schema"]
    want.json = fmt.get("type") == "json_object"
    return want


@dataclass
class OpenAICompatible:
    """A provider speaking OpenAI chat completions, with its own documented differences.

    OpenAI: https://platform.openai.com/docs/api-reference/chat/create (unknown fields answer 400
    "Unrecognized request argument supplied"; reasoning models (gpt-5, o-series) answer 400
    unsupported_parameter for max_tokens and unsupported_value for a temperature other than 1:
    https://platform.openai.com/docs/guides/reasoning). Usage on a stream only when
    stream_options.include_usage is set, on an extra chunk with empty choices.
    """

    provider: str
    fields: frozenset[str] = OPENAI_FIELDS
    unknown: str = "400"  # "400" | "422" (pydantic extra_forbidden) | "ignore"
    refused: dict[str, str] = field(default_factory=dict)  # field -> error message
    refuse_names: str | None = None  # error message for messages[].name
    reasoning_models: tuple[str, ...] = ()  # model prefixes with OpenAI's reasoning rules
    usage: str = "asked"  # "asked" | "last_chunk" | "x_groq"
    requests: list[Any] = field(default_factory=list)

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if not request.url.path.endswith("/chat/completions"):
            return error(404, openai_error(f"Unknown path {request.url.path}"))
        refusal = self.check(body)
        if refusal is not None:
            return refusal
        want = want_openai(body)
        if body.get("stream"):
            return self.stream(body, want)
        return httpx.Response(200, json=self.completion(body, want))

    def check(self, body: dict[str, Any]) -> httpx.Response | None:
        for name in body:
            if name in self.refused:
                return error(400, openai_error(self.refused[name], name))
            if name not in self.fields and self.unknown != "ignore":
                return self.unknown_field(["body", name], body[name])
        for i, message in enumerate(body.get("messages") or []):
            if "name" in message and message.get("role") != "tool":
                if self.refuse_names:
                    return error(400, openai_error(self.refuse_names, f"messages[{i}].name"))
                if self.unknown == "422":
                    loc = ["body", "messages", i, message.get("role"), "name"]
                    return self.unknown_field(loc, message["name"])
        if body.get("n", 1) != 1:
            return error(400, openai_error("'n' : number must be at most 1", "n"))
        model = body.get("model", "")
        if any(model.startswith(p) for p in self.reasoning_models):
            return self.check_reasoning(body)
        return None

    def unknown_field(self, loc: list[Any], value: Any) -> httpx.Response:
        if self.unknown == "422":  # https://docs.mistral.ai/api/ (pydantic validation)
            detail = [
                {
                    "type": "extra_forbidden",
                    "loc": loc,
                    "msg": "Extra inputs are not permitted",
                    "input": value,
                }
            ]
            return error(
                422,
                {
                    "object": "error",
                    "message": {"detail": detail},
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
        return error(400, openai_error(f"Unrecognized request argument supplied: {loc[-1]}"))

    def check_reasoning(self, body: dict[str, Any]) -> httpx.Response | None:
        for name in REASONING_UNSUPPORTED:
            if name in body:
                hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
                message = f"Unsupported parameter: '{name}' is not supported with this model.{hint}"
                return error(400, openai_error(message, name, "unsupported_parameter"))
        for name in REASONING_ONLY_DEFAULTS:
            if name in body and body[name] != 1:
                message = (
                    f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                    "Only the default (1) value is supported."
                )
                return error(400, openai_error(message, name, "unsupported_value"))
        return None

    def usage_body(self) -> dict[str, int]:
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }

    def message(self, want: Want) -> tuple[dict[str, Any], str]:
        if want.tool:
            call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": want.tool[0], "arguments": want.arguments()},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return {"role": "assistant", "content": want.text()}, "stop"

    def completion(self, body: dict[str, Any], want: Want) -> dict[str, Any]:
        message, finish = self.message(want)
        data = {
            "id": f"chatcmpl-{self.provider}",
            "object": "chat.completion",
            "created": 1_750_000_000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": LOGPROBS if body.get("logprobs") else None,
                }
            ],
        }
        if self.usage == "x_groq":
            data["usage"] = self.usage_body()  # non-streamed answers carry plain usage too
        else:
            data["usage"] = self.usage_body()
        return data

    def stream(self, body: dict[str, Any], want: Want) -> httpx.Response:
        base = {"id": f"chatcmpl-{self.provider}", "object": "chat.completion.chunk"}
        base["model"] = body["model"]
        message, finish = self.message(want)
        chunks: list[dict[str, Any]] = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ]
        if want.tool:
            chunks.append(
                {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, **message["tool_calls"][0]}
                ]}}]}
            )  # fmt: skip
        else:
            text = message["content"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                choice = {"index": 0, "delta": {"content": piece}}
                if body.get("logprobs"):
                    choice["logprobs"] = LOGPROBS
                chunks.append({**base, "choices": [choice]})
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        if self.usage == "last_chunk":
            last["usage"] = self.usage_body()
        if self.usage == "x_groq":
            last["x_groq"] = {"id": "req_fake", "usage": self.usage_body()}
        chunks.append(last)
        asked = (body.get("stream_options") or {}).get("include_usage")
        if self.usage == "asked" and asked:
            chunks.append({**base, "choices": [], "usage": self.usage_body()})
        return sse(chunks, done="[DONE]")


# --- Anthropic Messages ---------------------------------------------------------------------

ANTHROPIC_FIELDS = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    ]
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


# --- Gemini generateContent -------------------------------------------------------------------

GEMINI_FIELDS = frozenset(
    [
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
    ]
)
GEMINI_CONFIG_FIELDS = frozenset(
    [
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "mediaResolution",
    ]
)
GEMINI_DECLARATION_FIELDS = frozenset(
    [
        "name",
        "description",
        "behavior",
        "parameters",
        "parametersJsonSchema",
        "response",
        "responseJsonSchema",
    ]
)
# The OpenAPI subset `parameters` takes (https://ai.google.dev/api/caching#Schema).
GEMINI_SCHEMA_FIELDS = frozenset(
    [
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ]
)
GEMINI_PART_FIELDS = frozenset(
    [
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "thought",
        "thoughtSignature",
    ]
)


def gemini_error(problems: list[tuple[str, str]]) -> httpx.Response:
    messages = [
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
        if where
        else f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
        for name, where in problems
    ]
    return error(
        400,
        {
            "error": {
                "code": 400,
                "message": "\n".join(messages),
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [
                            {"field": where, "description": text}
                            for (_, where), text in zip(problems, messages, strict=True)
                        ],
                    }
                ],
            }
        },
    )


def unknown_schema_names(schema: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(schema, dict):
        return []
    found = [(name, where) for name in schema if name not in GEMINI_SCHEMA_FIELDS]
    for name, sub in (schema.get("properties") or {}).items():
        found += unknown_schema_names(sub, f"{where}.properties[{name}].value")
    if "items" in schema:
        found += unknown_schema_names(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or []):
        found += unknown_schema_names(sub, f"{where}.any_of[{i}]")
    return found


@dataclass
class Gemini:
    """generateContent: https://ai.google.dev/api/generate-content. The request is a proto in
    JSON: an unknown name anywhere answers 400 INVALID_ARGUMENT "Unknown name ... Cannot find
    field", including JSON Schema keywords outside the OpenAPI subset in
    functionDeclarations[].parameters (additionalProperties, $schema, const, $defs); a full JSON
    Schema goes in parametersJsonSchema (https://ai.google.dev/api/caching#FunctionDeclaration).
    Usage: usageMetadata on every chunk, complete on the last."""

    provider: str = "gemini"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/v1beta/models/"):
            return error(
                404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
            )
        problems = self.check(body)
        if problems:
            return gemini_error(problems)
        model, method = path.removeprefix("/v1beta/models/").split(":", 1)
        want = self.want(body)
        if method == "streamGenerateContent":
            return self.stream(model, want)
        return httpx.Response(200, json=self.response(model, want, final=True))

    def check(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        problems = [(n, "") for n in body if n not in GEMINI_FIELDS]
        config = body.get("generationConfig") or {}
        problems += [(n, "generation_config") for n in config if n not in GEMINI_CONFIG_FIELDS]
        for t, tool in enumerate(body.get("tools") or []):
            for d, decl in enumerate(tool.get("functionDeclarations") or []):
                here = f"tools[{t}].function_declarations[{d}]"
                problems += [(n, here) for n in decl if n not in GEMINI_DECLARATION_FIELDS]
                problems += unknown_schema_names(decl.get("parameters"), f"{here}.parameters")
        for c, content in enumerate(body.get("contents") or []):
            for p, part in enumerate(content.get("parts") or []):
                here = f"contents[{c}].parts[{p}]"
                problems += [(n, here) for n in part if n not in GEMINI_PART_FIELDS]
        return problems

    def want(self, body: dict[str, Any]) -> Want:
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        declarations = {
            d["name"]: d
            for tool in body.get("tools") or []
            for d in tool.get("functionDeclarations") or []
        }
        if calling.get("mode") == "ANY" and declarations:
            allowed = calling.get("allowedFunctionNames") or list(declarations)
            decl = declarations[allowed[0]]
            return Want(tool=(decl["name"], decl.get("parametersJsonSchema") or {}))
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        return Want(json_schema=schema, json=config.get("responseMimeType") == "application/json")

    def response(self, model: str, want: Want, *, final: bool) -> dict[str, Any]:
        if want.tool:
            part = {"functionCall": {"name": want.tool[0], "args": sample(want.tool[1])}}
        else:
            part = {"text": want.text()}
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if final:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": PROMPT_TOKENS,
                "candidatesTokenCount": COMPLETION_TOKENS if final else 2,
                "totalTokenCount": PROMPT_TOKENS + (COMPLETION_TOKENS if final else 2),
            },
            "modelVersion": model,
        }

    def stream(self, model: str, want: Want) -> httpx.Response:
        return sse([self.response(model, want, final=True)])


# --- Cohere v2 chat -------------------------------------------------------------------------

COHERE_FIELDS = frozenset(
    [
        "stream",
        "model",
        "messages",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "priority",
    ]
)
COHERE_FUNCTION_FIELDS = frozenset({"name", "description", "parameters"})


@dataclass
class Cohere:
    """v2 chat: https://docs.cohere.com/reference/chat. Unknown fields answer 400 with
    {"message": ...}; tool_choice is REQUIRED or NONE only; strict tools are the request-wide
    strict_tools (https://docs.cohere.com/v2/docs/tool-use-parameter-types). Usage: "usage" with
    billed_units and tokens, on the response or on message-end."""

    provider: str = "cohere"

    def handle(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.url.path != "/v2/chat":
            return error(404, {"message": "not found"})
        refusal = self.check(body)
        if refusal is not None:
            return error(400, {"id": "fake", "message": refusal})
        want = self.want(body)
        return self.stream(want) if body.get("stream") else self.chat(want)

    def check(self, body: dict[str, Any]) -> str | None:
        for name in body:
            if name not in COHERE_FIELDS:
                return f"invalid request: unknown field '{name}'"
        if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
            return "invalid request: tool_choice must be one of REQUIRED, NONE"
        for i, tool in enumerate(body.get("tools") or []):
            for name in tool.get("function") or {}:
                if name not in COHERE_FUNCTION_FIELDS:
                    return f"invalid request: unknown field 'tools[{i}].function.{name}'"
        return None

    def want(self, body: dict[str, Any]) -> Want:
        tools = body.get("tools") or []
        if body.get("tool_choice") == "REQUIRED" and tools:
            function = tools[0]["function"]
            return Want(tool=(function["name"], function.get("parameters") or {}))
        fmt = body.get("response_format") or {}
        return Want(json_schema=fmt.get("json_schema"), json=fmt.get("type") == "json_object")

    def usage(self) -> dict[str, Any]:
        counts = {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS}
        return {"billed_units": counts, "tokens": counts}

    def chat(self, want: Want) -> httpx.Response:
        message: dict[str, Any] = {"role": "assistant"}
        if want.tool:
            message["tool_calls"] = [
                {
                    "id": "call_fake1",
                    "type": "function",
                    "function": {"name": want.tool[0], "arguments": want.arguments()},
                }
            ]
            finish = "TOOL_CALL"
        else:
            message["content"] = [{"type": "text", "text": want.text()}]
            finish = "COMPLETE"
        return httpx.Response(
            200,
            json={"id": "fake", "finish_reason": finish, "message": message, "usage": self.usage()},
        )

    def stream(self, want: Want) -> httpx.Response:
        events: list[dict[str, Any]] = [
            {"type": "message-start", "id": "fake", "delta": {"message": {"role": "assistant"}}}
        ]
        if want.tool:
            call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": want.tool[0], "arguments": ""},
            }
            events += [
                {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}},
                {
                    "type": "tool-call-delta",
                    "index": 0,
                    "delta": {
                        "message": {"tool_calls": {"function": {"arguments": want.arguments()}}}
                    },
                },
            ]
            finish = "TOOL_CALL"
        else:
            events.append(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": want.text()}}},
                }
            )
            finish = "COMPLETE"
        events.append(
            {"type": "message-end", "delta": {"finish_reason": finish, "usage": self.usage()}}
        )
        return sse(events, named=True)


# --- Ollama ---------------------------------------------------------------------------------


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


# --- Perplexity Agent API -------------------------------------------------------------------

PERPLEXITY_FIELDS = frozenset(
    [
        "model",
        "models",
        "preset",
        "input",
        "instructions",
        "max_output_tokens",
        "max_steps",
        "temperature",
        "stream",
        "tools",
        "reasoning",
        "response_format",
        "language_preference",
    ]
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


# --- every provider of the shipped catalogue, by host ----------------------------------------


def openai_family() -> dict[str, OpenAICompatible]:
    return {
        "api.openai.com": OpenAICompatible(
            "openai", reasoning_models=("gpt-5", "o1", "o3", "o4"), usage="asked"
        ),
        # https://console.groq.com/docs/openai
        "api.groq.com": OpenAICompatible(
            "groq",
            fields=OPENAI_FIELDS | {"reasoning_format", "search_settings"},
            refused={
                "logprobs": "'logprobs' is not supported",
                "logit_bias": "'logit_bias' is not supported",
                "top_logprobs": "'top_logprobs' is not supported",
            },
            refuse_names="'messages.name' is not supported",
            usage="x_groq",
        ),
        # https://docs.together.ai/reference/chat-completions-1 (usage on the last chunk)
        "api.together.xyz": OpenAICompatible(
            "together",
            fields=OPENAI_FIELDS | {"top_k", "repetition_penalty", "min_p", "echo"},
            unknown="ignore",
            usage="last_chunk",
        ),
        # https://docs.mistral.ai/api/#tag/chat/operation/chat_completion_v1_chat_completions_post
        "api.mistral.ai": OpenAICompatible(
            "mistral",
            fields=frozenset(
                [
                    "model",
                    "messages",
                    "temperature",
                    "top_p",
                    "max_tokens",
                    "stream",
                    "stop",
                    "random_seed",
                    "response_format",
                    "tools",
                    "tool_choice",
                    "presence_penalty",
                    "frequency_penalty",
                    "n",
                    "prediction",
                    "parallel_tool_calls",
                    "prompt_mode",
                    "safe_prompt",
                ]
            ),
            unknown="422",
            usage="last_chunk",
        ),
        # https://huggingface.co/docs/inference-providers/tasks/chat-completion
        "router.huggingface.co": OpenAICompatible("huggingface", unknown="ignore"),
        # https://openrouter.ai/docs/api-reference/parameters (unknown parameters are ignored;
        # usage on the last chunk)
        "openrouter.ai": OpenAICompatible("openrouter", unknown="ignore", usage="last_chunk"),
        # https://api-docs.deepseek.com/api/create-chat-completion and
        # https://api-docs.deepseek.com/guides/reasoning_model (logprobs answer 400 there)
        "api.deepseek.com": OpenAICompatible("deepseek", unknown="ignore"),
    }


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


Reply = Callable[[httpx.Request], httpx.Response]
