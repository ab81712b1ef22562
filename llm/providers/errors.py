"""Classifying what went wrong upstream: an HTTP status, an error body (in any of the shapes
providers use), an error announced inside a 200 stream, or a transport failure, each becomes a
ProviderError whose kind decides failover. Keys echoed back by an upstream are scrubbed."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from llm.types import ErrorKind, ProviderConfig, ProviderError

# Statuses that say "try elsewhere or later" even though they are not 5xx.
OVERLOADED_STATUSES = frozenset({529})
OVERLOADED_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "UNAVAILABLE", "INTERNAL"})


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
