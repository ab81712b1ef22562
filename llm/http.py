"""The one shared httpx.AsyncClient of the process: the seam tests replace."""

from __future__ import annotations

import httpx

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0

_client: httpx.AsyncClient | None = None


def build_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        transport=transport,
    )


def get_client() -> httpx.AsyncClient:
    global _client
    if _client is None or _client.is_closed:
        _client = build_client()
    return _client


def set_client(client: httpx.AsyncClient | None) -> None:
    """Install a client (tests hand in one over httpx.MockTransport or a loopback fake)."""
    global _client
    _client = client
