"""How much of an upstream answer is read: answers and streams are read incrementally and never
past GATEWAY_MAX_UPSTREAM_BYTES; an error body only as far as its message."""

from __future__ import annotations

import httpx

from llm.types import ErrorKind, ProviderConfig, ProviderError

# Bytes one upstream answer or stream may have; set from GATEWAY_MAX_UPSTREAM_BYTES at start-up.
max_upstream_bytes = 32 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024  # an error body is only read for its message


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
