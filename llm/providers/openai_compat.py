"""The OpenAI chat-completions dialect, spoken by OpenAI, Groq, Together AI, Mistral,
Hugging Face's router, OpenRouter, Perplexity and DeepSeek (and Ollama's /v1 shim).

Which parameters are sent, and under which names, comes from each model's parameter rules
(llm.params, models_config.yaml): e.g. OpenAI's `max_completion_tokens`, Mistral's
`random_seed`, no `stream_options` where usage arrives on the last chunk unasked.
Quirks understood (ProviderConfig.quirks):
- "stream_usage": False     never send stream_options (as a rule dropping it does).
- "max_tokens_field": str   send the token cap under another name.
- "list_models": False      the provider has no /models endpoint.
Response extras are read whenever present: DeepSeek's reasoning_content and
prompt_cache_hit_tokens, OpenRouter/Groq's "reasoning", Perplexity's citations/search_results,
Groq's x_groq.usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from llm.providers.base import HTTPDialect
from llm.providers.errors import error_from_body
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
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "model_length": "length",  # Mistral
    "eos": "stop",
    "end_turn": "stop",
}


def map_finish_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, reason)


def parse_usage(raw: dict[str, Any] | None, service_tier: Any = None) -> Usage | None:
    """OpenAI's usage object; OpenRouter adds prompt_tokens_details.cache_write_tokens, DeepSeek
    prompt_cache_hit_tokens. The served service_tier is a top-level field of the answer.
    https://platform.openai.com/docs/api-reference/chat/object
    https://openrouter.ai/docs/use-cases/usage-accounting"""
    if not raw:
        return None
    details = raw.get("prompt_tokens_details") or {}
    output_details = raw.get("completion_tokens_details") or {}
    cached = details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_input_tokens=int(cached),
        cache_write_5m_tokens=int(details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(output_details.get("reasoning_tokens") or 0),
        service_tier=service_tier if isinstance(service_tier, str) else "",
    )


def usage_of(data: dict[str, Any]) -> Usage | None:
    """The usage of an answer or a chunk (Groq puts it under x_groq)."""
    raw = data.get("usage") or (data.get("x_groq") or {}).get("usage")
    return parse_usage(raw, data.get("service_tier"))


def parse_citations(data: dict[str, Any]) -> list[str] | None:
    citations = data.get("citations")
    if isinstance(citations, list) and citations:
        return [str(c) for c in citations]
    results = data.get("search_results")
    if isinstance(results, list) and results:
        return [str(r["url"]) for r in results if isinstance(r, dict) and r.get("url")]
    return None


def content_text(content: Any) -> str:
    """Message content is usually a string; Mistral's reasoning models send typed chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    return ""


def delta_events(delta: dict[str, Any]) -> list[StreamEvent]:
    events = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(StreamEvent(StreamEventType.REASONING, text=reasoning))
    text = delta.get("content")
    if type(text) is not str:  # most chunks carry a plain string: no call for them
        text = content_text(text)
    if text:
        events.append(StreamEvent(StreamEventType.DELTA, text=text))
    for call in delta.get("tool_calls") or []:
        function = call.get("function") or {}
        events.append(
            StreamEvent(
                StreamEventType.TOOL_CALL,
                text=function.get("arguments") or "",
                tool_call_index=call.get("index", 0),
                tool_call_id=call.get("id"),
                tool_name=function.get("name"),
            )
        )
    return events


class OpenAIDialect(HTTPDialect):
    name = "openai"
    chat_path = "chat/completions"
    models_path = "models"

    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]:
        """The request body; parameter names as the model's rules rename them (llm.params)."""
        names = request.wire_names
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.max_tokens is not None:
            field = names.get("max_tokens") or provider.quirks.get("max_tokens_field", "max_tokens")
            body[field] = request.max_tokens
        optional = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": request.stop,
            "tools": request.tools,
            "tool_choice": request.tool_choice,
            "response_format": request.response_format,
            "seed": request.seed,
            "user": request.user,
            **request.extra,
        }
        body.update({names.get(k, k): value for k, value in optional.items() if value is not None})
        body["stream"] = stream
        if stream and request.stream_usage and provider.quirks.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
        return body

    def parse_chat(
        self,
        provider: ProviderConfig,
        request: ChatRequest,
        data: dict[str, Any],
        latency_ms: float,
    ) -> ChatResult:
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = content_text(message.get("content"))
        tool_calls = [
            ToolCall(
                id=call.get("id") or f"call_{index}",
                name=(call.get("function") or {}).get("name", ""),
                arguments=(call.get("function") or {}).get("arguments") or "",
            )
            for index, call in enumerate(message.get("tool_calls") or [])
        ]
        usage = usage_of(data)
        return ChatResult(
            text=text,
            finish_reason=map_finish_reason(choice.get("finish_reason"))
            or ("tool_calls" if tool_calls else "stop"),
            usage=usage or estimate_usage(request.messages, text),
            provider=provider.id,
            model=data.get("model") or request.model,
            tool_calls=tool_calls,
            latency_ms=latency_ms,
            reasoning=message.get("reasoning_content") or message.get("reasoning") or None,
            citations=parse_citations(data),
            logprobs=choice.get("logprobs") or None,
        )

    async def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]:
        async with aclosing(iter_sse(response)) as messages:
            async for message in messages:
                if message.data.strip() == "[DONE]":
                    state.finished = True
                    return
                chunk = loads(message.data)
                if "error" in chunk and not chunk.get("choices"):
                    raise error_from_body(state.provider, chunk)
                state.model = chunk.get("model") or state.model
                if "citations" in chunk or "search_results" in chunk:  # Perplexity's
                    state.citations = parse_citations(chunk) or state.citations
                # The last chunk's, mostly: with include_usage every other chunk has "usage": null.
                if chunk.get("usage") or "x_groq" in chunk:
                    state.usage = usage_of(chunk) or state.usage
                for choice in chunk.get("choices") or []:
                    events = delta_events(choice.get("delta") or {})
                    if choice.get("logprobs"):
                        texts = [e for e in events if e.type is StreamEventType.DELTA]
                        if texts:
                            texts[0].logprobs = choice["logprobs"]
                    for event in events:
                        yield event
                    if reason := choice.get("finish_reason"):  # map_finish_reason's, inline
                        state.finish_reason = FINISH_REASONS.get(reason, reason)

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        data = await self.send(
            client,
            provider,
            "POST",
            self.url(provider, "embeddings"),
            body={"model": model, "input": inputs, "encoding_format": "float"},
        )
        rows = sorted(data.get("data") or [], key=lambda row: row.get("index", 0))
        usage = data.get("usage") or {}
        tokens = usage.get("prompt_tokens") or usage.get("total_tokens")
        return EmbeddingResult(
            vectors=[row["embedding"] for row in rows],
            usage=Usage(input_tokens=tokens) if tokens else estimate_inputs_usage(inputs),
            provider=provider.id,
            model=data.get("model") or model,
        )

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        if provider.quirks.get("list_models", True) is False:
            return []
        return await super().list_models(client, provider)


DIALECT = OpenAIDialect()
