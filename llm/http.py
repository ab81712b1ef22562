"""The one shared httpx.AsyncClient of the process: the seam tests replace.

Requests go through httpx's API, carried by aiohttp (httpx-aiohttp's transport): the same
client interface, at a fraction of httpcore's CPU cost per request, which matters on the hot path.
"""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0
# Upstream connections one process may hold at once (GATEWAY_UPSTREAM_MAX_CONNECTIONS). Every open
# stream holds one for its whole length, so this caps the streams a process serves without
# queueing; 0 means no cap (the file descriptor limit is then the only one).
MAX_CONNECTIONS = 10_000

_client: httpx.AsyncClient | None = None


def limits(max_connections: int = MAX_CONNECTIONS) -> httpx.Limits:
    # aiohttp's connector takes max_connections as its limit (0: none; None would mean its
    # default of 100) and keeps every released connection alive for keepalive_expiry.
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=200)


def build_client(
    transport: httpx.AsyncBaseTransport | None = None, max_connections: int = MAX_CONNECTIONS
) -> httpx.AsyncClient:
    pool = limits(max_connections)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        limits=pool,
        transport=transport or AiohttpTransport(limits=pool, trust_env=False),
    )


def get_client() -> httpx.AsyncClient:
    """The client installed at start-up (gateway_project/startup.py)."""
    if _client is None:
        raise RuntimeError("No HTTP client is installed: the process was not started up.")
    return _client


def set_client(client: httpx.AsyncClient | None) -> None:
    """Install the client: at start-up, or in tests one over httpx.MockTransport or a fake."""
    global _client
    _client = client
