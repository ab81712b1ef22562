"""OpenAI chat completions and the providers that copy it, each with its documented differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.llm.strict.answers import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    Want,
    error,
    names,
    sse,
)

OPENAI_FIELDS = names(
    "model messages audio frequency_penalty function_call functions logit_bias logprobs "
    "max_completion_tokens max_tokens metadata modalities n parallel_tool_calls "
    "prediction presence_penalty prompt_cache_key reasoning_effort response_format "
    "safety_identifier seed service_tier stop store stream stream_options temperature "
    "tool_choice tools top_logprobs top_p user verbosity web_search_options"
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
