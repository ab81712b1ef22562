"""The Google Gemini API dialect (generativelanguage v1beta: generateContent,
streamGenerateContent?alt=sse, embedContent/batchEmbedContents, models).

Tool parameters go in `parametersJsonSchema`, which takes a full JSON Schema (what OpenAI strict
tools carry: additionalProperties, $defs, const...); `parameters` takes only an OpenAPI subset and
answers 400 "Unknown name" for those keywords. Images become inlineData (base64 data URLs) or
fileData (URLs). reasoning_effort becomes thinkingConfig.thinkingBudget.

Quirks: "schema_field" ("responseJsonSchema" by default; "responseSchema" sends the OpenAPI-subset
field older models want) for json_schema structured output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body, require_output
from llm.providers.http import StreamState
from llm.providers.sse import iter_sse, loads
from llm.tokens import estimate_inputs_usage, estimate_usage
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ProviderConfig,
    StreamEvent,
    StreamEventType,
    ToolCall,
    Usage,
)

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# reasoning_effort -> thinking budget in tokens (2.5 models accept 128..24576 on every tier).
THINKING_BUDGETS = {"minimal": 128, "low": 1024, "medium": 8192, "high": 24576}
IMAGE_TYPES = {"png": "image/png", "gif": "image/gif", "webp": "image/webp"}


def image_part(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        mime, data = url[5:].split(";base64,", 1)
        return {"inlineData": {"mimeType": mime, "data": data}}
    suffix = url.rsplit(".", 1)[-1].split("?", 1)[0].lower()
    return {"fileData": {"mimeType": IMAGE_TYPES.get(suffix, "image/jpeg"), "fileUri": url}}


def content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            parts.append(image_part((part.get("image_url") or {}).get("url", "")))
    return parts


def model_path(model: str) -> str:
    return model if model.startswith("models/") else f"models/{model}"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def translate_messages(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenAI messages as (systemInstruction, contents); tool results need the function name,
    which Gemini keys on, so it is looked up from the assistant turn that made the call."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        parts: list[dict[str, Any]] = []
        if role == "tool":
            name = message.get("name") or call_names.get(message.get("tool_call_id", ""), "")
            parts.append(
                {
                    "functionResponse": {
                        "name": name,
                        "response": {"result": text_of(message.get("content"))},
                    }
                }
            )
            role = "user"
        else:
            parts.extend(content_parts(message.get("content")))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                call_names[call.get("id", "")] = function.get("name", "")
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name", ""),
                            "args": json.loads(function.get("arguments") or "{}"),
                        }
                    }
                )
        gemini_role = "model" if role == "assistant" else "user"
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if system else None
    return instruction, contents


def generation_config(provider: ProviderConfig, request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("maxOutputTokens", request.max_tokens),
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("stopSequences", request.stop),
        ("seed", request.seed),
        ("presencePenalty", request.extra.get("presence_penalty")),
        ("frequencyPenalty", request.extra.get("frequency_penalty")),
    ):
        if value is not None:
            config[key] = value
    effort = request.extra.get("reasoning_effort")
    if effort in THINKING_BUDGETS:
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    response_format = request.response_format or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config[provider.quirks.get("schema_field", "responseJsonSchema")] = schema
    return config


def declaration(tool: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool as a functionDeclaration; its JSON Schema whole, in parametersJsonSchema."""
    function = tool.get("function") or tool
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def parse_usage(raw: dict[str, Any] | None) -> Usage | None:
    """Thinking tokens are billed as output; promptTokenCount already includes the cache;
    toolUsePromptTokenCount comes on top of the prompt and is billed as input.
    https://ai.google.dev/api/generate-content#UsageMetadata"""
    if not raw or "promptTokenCount" not in raw:
        return None
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(raw.get("promptTokenCount") or 0),
        output_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
        tool_use_prompt_tokens=int(raw.get("toolUsePromptTokenCount") or 0),
    )


def finish_reason(candidate: dict[str, Any], has_calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if reason is None:
        return None
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def split_parts(parts: list[dict[str, Any]]) -> tuple[str, str, list[ToolCall]]:
    text, thoughts, calls = [], [], []
    for part in parts:
        if "functionCall" in part:
            call = part["functionCall"]
            calls.append(
                ToolCall(
                    id=call.get("id") or new_call_id(),
                    name=call.get("name", ""),
                    arguments=json.dumps(call.get("args") or {}),
                )
            )
        elif part.get("thought"):
            thoughts.append(part.get("text", ""))
        elif "text" in part:
            text.append(part["text"])
    return "".join(text), "".join(thoughts), calls


class GeminiDialect(HTTPDialect):
    name = "gemini"
    version_suffix = "/v1beta"
    stream_params = {"alt": "sse"}
    models_path = "v1beta/models"
    models_params = {"pageSize": 1000}

    def model_url(self, provider: ProviderConfig, model: str, method: str) -> str:
        return self.url(provider, f"v1beta/{model_path(model)}:{method}")

    def chat_url(self, provider: ProviderConfig, request: ChatRequest, *, stream: bool) -> str:
        method = "streamGenerateContent" if stream else "generateContent"
        return self.model_url(provider, request.model, method)

    def auth(self, provider: ProviderConfig) -> dict[str, str]:
        return {"x-goog-api-key": provider.api_key} if provider.api_key else {}

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
        instruction, contents = translate_messages(request.messages)
        body: dict[str, Any] = {"contents": contents}
        if instruction:
            body["systemInstruction"] = instruction
        config = generation_config(provider, request)
        if config:
            body["generationConfig"] = config
        if request.tools:
            body["tools"] = [{"functionDeclarations": [declaration(t) for t in request.tools]}]
        choice = request.tool_choice
        if isinstance(choice, dict):
            body["toolConfig"] = {
                "functionCallingConfig": {
                    "mode": "ANY",
                    "allowedFunctionNames": [(choice.get("function") or {}).get("name")],
                }
            }
        elif choice in TOOL_MODES:
            body["toolConfig"] = {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
        return body

    def parse_chat(
        self,
        provider: ProviderConfig,
        request: ChatRequest,
        data: dict[str, Any],
        latency_ms: float,
    ) -> ChatResult:
        candidates = data.get("candidates") or []
        candidate = candidates[0] if candidates else {}
        parts = (candidate.get("content") or {}).get("parts") or []
        text, thoughts, calls = split_parts(parts)
        blocked = not candidates and (data.get("promptFeedback") or {}).get("blockReason")
        return ChatResult(
            text=text,
            finish_reason="content_filter"
            if blocked
            else finish_reason(candidate, bool(calls)) or "stop",
            usage=parse_usage(data.get("usageMetadata")) or estimate_usage(request.messages, text),
            provider=provider.id,
            model=data.get("modelVersion") or request.model,
            tool_calls=calls,
            latency_ms=latency_ms,
            reasoning=thoughts or None,
        )

    async def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        """Each SSE frame is a partial GenerateContentResponse; function calls arrive whole."""
        calls_seen = 0
        async with aclosing(iter_sse(response)) as messages:
            async for message in messages:
                chunk = loads(message.data)
                if "error" in chunk:
                    raise error_from_body(state.provider, chunk)
                state.model = chunk.get("modelVersion") or state.model
                state.usage = parse_usage(chunk.get("usageMetadata")) or state.usage
                candidates = chunk.get("candidates") or []
                if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
                    state.finish_reason = "content_filter"
                for candidate in candidates[:1]:
                    text, thoughts, calls = split_parts(
                        (candidate.get("content") or {}).get("parts") or []
                    )
                    if thoughts:
                        yield StreamEvent(StreamEventType.REASONING, text=thoughts)
                    if text:
                        yield StreamEvent(StreamEventType.DELTA, text=text)
                    for call in calls:
                        yield StreamEvent(
                            StreamEventType.TOOL_CALL,
                            text=call.arguments,
                            tool_call_index=calls_seen,
                            tool_call_id=call.id,
                            tool_name=call.name,
                        )
                        calls_seen += 1
                    state.finish_reason = (
                        finish_reason(candidate, calls_seen > 0) or state.finish_reason
                    )

    def parse_models(self, data: Any) -> list[str]:
        return [
            str(row["name"]).removeprefix("models/")
            for row in data.get("models") or []
            if row.get("name")
        ]

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        if len(inputs) == 1:
            data = await self.send(
                client,
                provider,
                "POST",
                self.model_url(provider, model, "embedContent"),
                body={"content": {"parts": [{"text": inputs[0]}]}},
            )
            vectors = [require_output(data, provider, "embedding")["values"]]
        else:
            body = {
                "requests": [
                    {"model": model_path(model), "content": {"parts": [{"text": text}]}}
                    for text in inputs
                ]
            }
            data = await self.send(
                client,
                provider,
                "POST",
                self.model_url(provider, model, "batchEmbedContents"),
                body=body,
            )
            vectors = [row["values"] for row in require_output(data, provider, "embeddings")]
        return EmbeddingResult(
            vectors=vectors, usage=estimate_inputs_usage(inputs), provider=provider.id, model=model
        )


DIALECT = GeminiDialect()
