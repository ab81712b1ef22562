"""The one shared upstream client of the process: the seam tests replace.

In production it is aiohttp's ClientSession behind the one call the dialects make,
`client.stream(method, url, headers=, content=, params=)`: an async context manager giving the
response's `status_code`, `headers` (case-insensitive) and `aiter_bytes()`. httpx's AsyncClient
offers the same call, so tests hand the dialects one over httpx.MockTransport or a fake
(`build_client(transport=...)`). httpx over aiohttp (httpx-aiohttp's transport) cost more than twice
the CPU of aiohttp alone per upstream request (bench/README.md), building httpx's request
and response models around aiohttp's own; here aiohttp's errors are still reported as httpx's
(httpx-aiohttp's mapping), so a failure is classified the same whichever client made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import aiohttp
import httpx
from httpx_aiohttp.transport import map_aiohttp_exceptions

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0
KEEPALIVE_SECONDS = 5.0  # an idle pooled connection is closed after this (httpx's default)
# Upstream connections one process may hold at once (GATEWAY_UPSTREAM_MAX_CONNECTIONS). Every open
# stream holds one for its whole length, so this caps the streams a process serves without
# queueing; 0 means no cap (the file descriptor limit is then the only one).
MAX_CONNECTIONS = 10_000


class AiohttpResponse:
    """An upstream answer, read as it arrives; transport errors surface as httpx's."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as error:
            raise_as_httpx(error)


class Exchange:
    """`async with client.stream(...) as response`: the request is sent on entry; on exit the
    connection goes back to the pool if the answer was read to its end, else it is closed.
    (A class rather than an @asynccontextmanager: this runs once per upstream call.)"""

    __slots__ = ("_client", "_method", "_url", "_options", "_response")

    def __init__(self, client: AiohttpClient, method: str, url: str, options: dict) -> None:
        self._client, self._method, self._url, self._options = client, method, url, options
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> AiohttpResponse:
        try:
            self._response = await self._client.session().request(
                self._method, self._url, allow_redirects=False, **self._options
            )
        except Exception as error:
            raise_as_httpx(error)
        return AiohttpResponse(self._response)

    async def __aexit__(self, *exc_info: object) -> None:
        self._response.release()


def raise_as_httpx(error: Exception) -> NoReturn:
    """Raise aiohttp's error as httpx's (httpx-aiohttp's mapping), anything else as it is: only
    on the way out of a failure, so a call that succeeds pays for no context manager."""
    with map_aiohttp_exceptions():
        raise error


class AiohttpClient:
    """The production client: one aiohttp session, its pool capped at max_connections."""

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        read_timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # As httpx.Timeout(read_timeout, connect=connect_timeout): `connect` bounds the wait for
        # a pooled connection plus connecting, `sock_connect` connecting, `sock_read` each read.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=read_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )

    def session(self) -> aiohttp.ClientSession:
        """Opened on first use, inside the event loop that serves (aiohttp binds it there)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,  # 0: no cap
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=httpx.create_ssl_context(),  # certifi's roots, as httpx verifies
            )
            # No cookie jar: one session serves every tenant, so a cookie a provider sets on one
            # tenant's answer (a CDN's session cookie) must not ride along on the next tenant's
            # request; and the jar is looked up on every request for nothing.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Exchange:
        options = {"headers": headers, "data": content, "params": params}
        return Exchange(self, method, url, options)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AiohttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# What the dialects call `stream(method, url, headers=, content=, params=)` on.
UpstreamClient = AiohttpClient | httpx.AsyncClient

_client: UpstreamClient | None = None


def build_client(
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = MAX_CONNECTIONS,
    read_timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> UpstreamClient:
    """The production client; with a transport (tests), an httpx client over it."""
    if transport is None:
        return AiohttpClient(max_connections, read_timeout, connect_timeout)
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    return httpx.AsyncClient(timeout=timeout, transport=transport)


def get_client() -> UpstreamClient:
    """The client installed at start-up (gateway_project/startup.py)."""
    if _client is None:
        raise RuntimeError("No HTTP client is installed: the process was not started up.")
    return _client


def set_client(client: UpstreamClient | None) -> None:
    """Install the client: at start-up, or in tests one over httpx.MockTransport or a fake."""
    global _client
    _client = client
