"""Talking to an upstream over the shared httpx client: URLs and headers, one JSON round trip,
and the stream driver that turns a broken upstream into USAGE + ERROR events. Every failure comes
back classified (llm.providers.errors); answers are read under the size cap (llm.providers.limits).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from llm.json_codec import decode_json, encode_json
from llm.providers import limits, sse
from llm.providers.errors import error_from_response, error_from_transport
from llm.tokens import TextTally, estimate_usage, fill_unreported
from llm.types import (
    ChatRequest,
    ErrorKind,
    ProviderConfig,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)

TEXT_EVENTS = frozenset(
    {StreamEventType.DELTA, StreamEventType.REASONING, StreamEventType.TOOL_CALL}
)


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def strip_suffix(base_url: str, suffix: str) -> str:
    """Accept base URLs given with or without a version segment the dialect adds itself."""
    base = base_url.rstrip("/")
    return base[: -len(suffix)] if base.endswith(suffix) else base


def build_headers(
    provider: ProviderConfig, auth: Mapping[str, str] | None = None
) -> dict[str, str]:
    """JSON headers, the dialect's auth headers, then the provider's own static headers."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    headers.update(auth or {})
    headers.update(provider.headers)
    return headers


def bearer_auth(provider: ProviderConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


# --- plain JSON calls -----------------------------------------------------------------------


async def request_json(
    client: httpx.AsyncClient,
    provider: ProviderConfig,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """One JSON round trip; every failure comes back as a classified ProviderError."""
    try:
        payload = None if body is None else encode_json(body)
        async with client.stream(
            method, url, headers=headers, content=payload, params=params
        ) as response:
            if response.status_code >= 400:
                content = await limits.read_error_body(response)
                raise error_from_response(provider, response.status_code, response.headers, content)
            content = await limits.read_capped(response, provider)
    except httpx.RequestError as exc:
        raise error_from_transport(provider, exc) from exc
    try:
        return decode_json(content)
    except ValueError as exc:
        raise ProviderError(
            ErrorKind.OVERLOADED,
            f"{provider.name}: answered HTTP {response.status_code} without JSON",
            provider=provider.id,
            status=response.status_code,
        ) from exc


# --- streams --------------------------------------------------------------------------------


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    provider: ProviderConfig,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any,
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[httpx.Response]:
    """POST and hand back the streaming response once its status is known to be good."""
    try:
        # Held for the stream's whole length: an exact-size copy, not orjson's 4 KB buffer.
        payload = bytes(memoryview(encode_json(body)))
        async with client.stream(
            "POST", url, headers=headers, content=payload, params=params
        ) as resp:
            if resp.status_code >= 400:
                content = await limits.read_error_body(resp)
                raise error_from_response(provider, resp.status_code, resp.headers, content)
            yield resp
    except httpx.RequestError as exc:
        raise error_from_transport(provider, exc) from exc


@dataclass
class StreamState:
    """What a decoder learns as the stream goes; the driver reads it at the end."""

    provider: ProviderConfig
    request: ChatRequest
    model: str
    finish_reason: str | None = None
    usage: Usage | None = None
    citations: list[str] | None = None
    finished: bool = False  # saw the dialect's terminal event


Decoder = Callable[[httpx.Response, StreamState], AsyncIterator[StreamEvent]]


async def run_stream(
    client: httpx.AsyncClient,
    provider: ProviderConfig,
    request: ChatRequest,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Any,
    decode: Decoder,
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Drive a decoder over an upstream stream.

    Failures before the first event raise ProviderError (the caller can still fail over).
    After that nothing is raised: a break yields USAGE for what arrived, then ERROR.
    A clean stream ends with USAGE then DONE.
    """
    state = StreamState(provider=provider, request=request, model=request.model)
    received = TextTally()  # counted, not kept: a long stream would hold every piece
    yielded = False
    async with open_stream(
        client, provider, url, headers=headers, body=body, params=params
    ) as response:
        error: ProviderError | None = None
        seen_usage: Usage | None = None
        try:
            async for event in decode(response, state):
                if event.type in TEXT_EVENTS:
                    received.add(event.text)
                if state.usage is not seen_usage and state.usage is not None:
                    # Counts reported mid-stream (Anthropic's message_start, Gemini's running
                    # usageMetadata) reach the caller at once, so a disconnect still bills them.
                    seen_usage = state.usage
                    yield StreamEvent(StreamEventType.USAGE, usage=state.usage, model=state.model)
                yielded = True
                yield event
        except ProviderError as exc:
            error = exc
        except httpx.RequestError as exc:
            error = error_from_transport(provider, exc, midstream=True)
        except limits.UpstreamTooLargeError:
            error = limits.too_large(provider)
        except ValueError as exc:  # malformed JSON in a frame
            error = ProviderError(
                ErrorKind.CONNECTION,
                f"{provider.name}: malformed stream data ({exc})",
                provider=provider.id,
            )
        sse.mark_ended()  # the decoder is done: the last events follow without waiting
        if error is None and not (state.finished or state.finish_reason):
            error = ProviderError(
                ErrorKind.CONNECTION,
                f"{provider.name}: stream ended before its final event",
                provider=provider.id,
            )
        if error is not None and not yielded:
            raise error
        if error is not None:
            usage = fill_unreported(state.usage, request.messages, received)
            yield StreamEvent(StreamEventType.USAGE, usage=usage)
            yield StreamEvent(StreamEventType.ERROR, error=error)
            return
        usage = state.usage or estimate_usage(request.messages, received)
        yield StreamEvent(StreamEventType.USAGE, usage=usage, model=state.model)
        yield StreamEvent(
            StreamEventType.DONE,
            finish_reason=state.finish_reason or "stop",
            citations=state.citations,
            model=state.model,
        )
