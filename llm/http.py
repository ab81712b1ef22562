"""The one shared httpx.AsyncClient of the process: the seam tests replace.

Requests go through httpx's API, carried by aiohttp (httpx-aiohttp's transport): the same
client interface, at a fraction of httpcore's CPU cost per request, which matters on the hot path.
"""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)

_client: httpx.AsyncClient | None = None


def build_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        limits=LIMITS,
        transport=transport or AiohttpTransport(limits=LIMITS, trust_env=False),
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
