"""What every dialect shares on the wire: URLs, JSON calls, SSE/NDJSON framing, error
classification and the stream driver that turns a broken upstream into USAGE + ERROR events.
"""

from __future__ import annotations

import codecs
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from llm.tokens import estimate_usage, fill_unreported
from llm.types import (
    ChatRequest,
    ErrorKind,
    ProviderConfig,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)

# Statuses that say "try elsewhere or later" even though they are not 5xx.
OVERLOADED_STATUSES = frozenset({529})
OVERLOADED_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "UNAVAILABLE", "INTERNAL"})
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


# --- error classification -------------------------------------------------------------------


def kind_for_status(status: int, error_type: str | None = None) -> ErrorKind:
    if error_type in OVERLOADED_ERROR_TYPES or status in OVERLOADED_STATUSES or status >= 500:
        return ErrorKind.OVERLOADED
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 408:
        return ErrorKind.TIMEOUT
    return ErrorKind.BAD_REQUEST


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait, from retry-after-ms, Retry-After (seconds or HTTP date) or a
    google.rpc.RetryInfo detail in the body."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            seconds = _seconds_until(value)
            if seconds is not None:
                return seconds
    return _retry_delay_from_body(body)


def _seconds_until(http_date: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def _retry_delay_from_body(body: Any) -> float | None:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None


def upstream_message(body: Any) -> tuple[str, str | None]:
    """The upstream's own error message and error type, from the shapes providers use:
    {"error": {"message", "type"|"status"}}, {"type": "error", "error": {...}}, {"error": "..."},
    {"message": "..."} and FastAPI-style {"detail": ...}."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind = error.get("type") or error.get("status") or error.get("code")
            message = error.get("message") or json.dumps(error)
            return str(message), str(kind) if kind is not None else None
        if isinstance(error, str):
            return error, None
        for key in ("message", "detail", "msg"):
            if body.get(key):
                detail = body[key]
                return (detail if isinstance(detail, str) else json.dumps(detail)), None
        return json.dumps(body), None
    if isinstance(body, str):
        return body.strip()[:500] or "(empty body)", None
    return "(empty body)", None


def scrub(text: str, provider: ProviderConfig) -> str:
    """Upstreams sometimes echo the key back; it must never reach a message or a log."""
    if provider.api_key and len(provider.api_key) >= 4:
        text = text.replace(provider.api_key, "[redacted]")
    return text


def error_from_body(
    provider: ProviderConfig,
    body: Any,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    message, error_type = upstream_message(body)
    kind = kind_for_status(status, error_type) if status else _kind_for_type(error_type)
    if _names_invalid_key(body):  # Gemini answers a bad key with 400 INVALID_ARGUMENT
        kind = ErrorKind.AUTH
    where = f"HTTP {status}" if status else "stream error"
    return ProviderError(
        kind,
        scrub(f"{provider.name} ({where}): {message}", provider),
        provider=provider.id,
        status=status,
        retry_after=parse_retry_after(headers or {}, body),
        body=body,
    )


def _names_invalid_key(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return any(
        isinstance(detail, dict) and detail.get("reason") == "API_KEY_INVALID"
        for detail in (details if isinstance(details, list) else [])
    )


def _kind_for_type(error_type: str | None) -> ErrorKind:
    """Errors announced inside a 200 stream carry only a type; map the well-known ones."""
    lowered = (error_type or "").lower()
    if "rate" in lowered or "resource_exhausted" in lowered:
        return ErrorKind.RATE_LIMITED
    if "auth" in lowered or "permission" in lowered:
        return ErrorKind.AUTH
    if "invalid" in lowered or "bad_request" in lowered:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.OVERLOADED


def error_from_response(
    provider: ProviderConfig, status: int, headers: Mapping[str, str], content: bytes
) -> ProviderError:
    text = content.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = text
    return error_from_body(provider, body, status=status, headers=headers)


def is_timeout(exc: Exception) -> bool:
    """A real timeout, not a refused or dropped connection. The aiohttp transport reports any
    connection failure as httpx.ConnectTimeout; the aiohttp error underneath tells them apart."""
    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    return cause is None or isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__


def error_from_transport(
    provider: ProviderConfig, exc: Exception, *, midstream: bool = False
) -> ProviderError:
    kind = ErrorKind.TIMEOUT if is_timeout(exc) else ErrorKind.CONNECTION
    what = "stream broke" if midstream else "request failed"
    detail = str(exc) or exc.__class__.__name__
    return ProviderError(
        kind,
        scrub(f"{provider.name}: {what} ({exc.__class__.__name__}: {detail})", provider),
        provider=provider.id,
    )


# --- size caps: an upstream answer is read incrementally and never past the cap -------------

# Bytes one upstream answer or stream may have; set from GATEWAY_MAX_UPSTREAM_BYTES at start-up.
max_upstream_bytes = 32 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024  # an error body is only read for its message
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def set_max_upstream_bytes(limit: int) -> None:
    global max_upstream_bytes
    max_upstream_bytes = limit


class UpstreamTooLargeError(Exception):
    """The upstream sent more than max_upstream_bytes; reading stopped there."""


def too_large(provider: ProviderConfig) -> ProviderError:
    return ProviderError(
        ErrorKind.OVERLOADED,
        f"{provider.name}: the answer exceeded the gateway's limit of {max_upstream_bytes} bytes",
        provider=provider.id,
    )


async def read_capped(response: httpx.Response, provider: ProviderConfig) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_upstream_bytes:
        raise too_large(provider)
    chunks, total = [], 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_upstream_bytes:
            raise too_large(provider)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_error_body(response: httpx.Response) -> bytes:
    """The start of an error body (enough for its message); the rest is not read."""
    chunks, total = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        total += len(chunk)
        if total >= MAX_ERROR_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_ERROR_BODY_BYTES]


async def iter_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines, decoded as they arrive; UpstreamTooLargeError past the cap."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending, total = "", 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_upstream_bytes:
            raise UpstreamTooLargeError(total)
        text = pending + decoder.decode(chunk)
        held = text.endswith("\r")  # maybe the first half of a CRLF split across chunks
        *lines, pending = LINE_BREAK.split(text[:-1] if held else text)
        pending += "\r" if held else ""
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.removesuffix("\r")


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
        async with client.stream(
            method, url, headers=headers, json=body, params=params
        ) as response:
            if response.status_code >= 400:
                content = await read_error_body(response)
                raise error_from_response(provider, response.status_code, response.headers, content)
            content = await read_capped(response, provider)
    except httpx.RequestError as exc:
        raise error_from_transport(provider, exc) from exc
    try:
        return json.loads(content)
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
        async with client.stream("POST", url, headers=headers, json=body, params=params) as resp:
            if resp.status_code >= 400:
                content = await read_error_body(resp)
                raise error_from_response(provider, resp.status_code, resp.headers, content)
            yield resp
    except httpx.RequestError as exc:
        raise error_from_transport(provider, exc) from exc


@dataclass
class SSEMessage:
    event: str
    data: str


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEMessage]:
    """Server-sent events, one message per blank-line-terminated block; comments skipped."""
    event, data = "", []
    async for line in iter_lines(response):
        if not line:
            if data:
                yield SSEMessage(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:  # some servers omit the final blank line
        yield SSEMessage(event or "message", "\n".join(data))


async def iter_ndjson(response: httpx.Response) -> AsyncIterator[Any]:
    async for line in iter_lines(response):
        if line.strip():
            yield json.loads(line)


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
    received: list[str] = []
    yielded = False
    async with open_stream(
        client, provider, url, headers=headers, body=body, params=params
    ) as response:
        error: ProviderError | None = None
        seen_usage: Usage | None = None
        try:
            async for event in decode(response, state):
                if event.type in TEXT_EVENTS:
                    received.append(event.text)
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
        except UpstreamTooLargeError:
            error = too_large(provider)
        except ValueError as exc:  # malformed JSON in a frame
            error = ProviderError(
                ErrorKind.CONNECTION,
                f"{provider.name}: malformed stream data ({exc})",
                provider=provider.id,
            )
        if error is None and not (state.finished or state.finish_reason):
            error = ProviderError(
                ErrorKind.CONNECTION,
                f"{provider.name}: stream ended before its final event",
                provider=provider.id,
            )
        if error is not None and not yielded:
            raise error
        output = "".join(received)
        if error is not None:
            usage = fill_unreported(state.usage, request.messages, output)
            yield StreamEvent(StreamEventType.USAGE, usage=usage)
            yield StreamEvent(StreamEventType.ERROR, error=error)
            return
        usage = state.usage or estimate_usage(request.messages, output)
        yield StreamEvent(StreamEventType.USAGE, usage=usage, model=state.model)
        yield StreamEvent(
            StreamEventType.DONE,
            finish_reason=state.finish_reason or "stop",
            citations=state.citations,
            model=state.model,
        )


def loads(data: str) -> Any:
    return json.loads(data)


def require_output(data: Any, provider: ProviderConfig, key: str) -> Any:
    """A 200 answer without the part we need is an upstream fault, not ours."""
    if not isinstance(data, dict) or key not in data:
        raise ProviderError(
            ErrorKind.OVERLOADED,
            f"{provider.name}: answer lacks {key!r}",
            provider=provider.id,
            body=data,
        )
    return data[key]
