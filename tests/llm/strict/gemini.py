"""A strict fake of Gemini's generateContent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.llm.strict.answers import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    Want,
    error,
    names,
    sample,
    sse,
)

GEMINI_FIELDS = names(
    "contents tools toolConfig safetySettings systemInstruction generationConfig cachedContent"
)
GEMINI_CONFIG_FIELDS = names(
    "stopSequences responseMimeType responseSchema responseJsonSchema responseModalities "
    "candidateCount maxOutputTokens temperature topP topK seed presencePenalty "
    "frequencyPenalty responseLogprobs logprobs enableEnhancedCivicAnswers speechConfig "
    "thinkingConfig mediaResolution"
)
GEMINI_DECLARATION_FIELDS = names(
    "name description behavior parameters parametersJsonSchema response responseJsonSchema"
)
# The OpenAPI subset `parameters` takes (https://ai.google.dev/api/caching#Schema).
GEMINI_SCHEMA_FIELDS = names(
    "type format title description nullable enum maxItems minItems properties required "
    "minProperties maxProperties minLength maxLength pattern example anyOf "
    "propertyOrdering default items minimum maximum"
)
GEMINI_PART_FIELDS = names(
    "text inlineData fileData functionCall functionResponse thought thoughtSignature"
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
