"""The contract every dialect implements, and the skeleton the HTTP dialects share.

A dialect is stateless: it gets the shared httpx client, a ProviderConfig and a ChatRequest, and
returns plain values or raises ProviderError. Providers are data; dialects are code.

HTTPDialect writes the four calls once, as template methods:

    chat         build_body(stream=False) -> send (POST chat_url) -> parse_chat(JSON answer)
    stream       build_body(stream=True)  -> run_stream (POST chat_url) driving decode_stream
    list_models  send (GET models_path) -> parse_models
    embed        a 400 unless the dialect has an embeddings API

A dialect sets its paths and overrides only what differs: auth headers, the body, how the answer
and the stream frames read. The demo dialect answers locally and implements Dialect directly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol

import httpx

from llm.providers.http import (
    StreamState,
    bearer_auth,
    build_headers,
    elapsed_ms,
    join_url,
    request_json,
    run_stream,
    strip_suffix,
)
from llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ErrorKind,
    ProviderConfig,
    ProviderError,
    StreamEvent,
)


class Dialect(Protocol):
    name: str

    async def chat(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> ChatResult: ...

    def stream(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]: ...

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult: ...

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        """A free call used as a health probe for idle providers."""
        ...


class HTTPDialect(ABC):
    """A dialect spoken over HTTP with JSON bodies and an SSE (or NDJSON) stream."""

    name: ClassVar[str]
    # A version segment base URLs may be given with, which the paths below add themselves.
    version_suffix: ClassVar[str] = ""
    chat_path: ClassVar[str]
    stream_accept: ClassVar[str] = "text/event-stream"
    stream_params: ClassVar[Mapping[str, Any] | None] = None
    models_path: ClassVar[str | None] = None  # None: no listing, list_models answers []
    models_params: ClassVar[Mapping[str, Any] | None] = None

    # --- what a dialect may override ------------------------------------------------------

    def base_url(self, provider: ProviderConfig) -> str:
        if not self.version_suffix:
            return provider.base_url
        return strip_suffix(provider.base_url, self.version_suffix)

    def url(self, provider: ProviderConfig, path: str) -> str:
        return join_url(self.base_url(provider), path)

    def chat_url(self, provider: ProviderConfig, request: ChatRequest, *, stream: bool) -> str:
        return self.url(provider, self.chat_path)

    def auth(self, provider: ProviderConfig) -> dict[str, str]:
        return bearer_auth(provider)

    def headers(self, provider: ProviderConfig) -> dict[str, str]:
        return build_headers(provider, self.auth(provider))

    @abstractmethod
    def build_body(
        self, provider: ProviderConfig, request: ChatRequest, *, stream: bool
    ) -> dict[str, Any]: ...

    @abstractmethod
    def parse_chat(
        self, provider: ProviderConfig, request: ChatRequest, data: Any, latency_ms: float
    ) -> ChatResult: ...

    @abstractmethod
    def decode_stream(
        self, response: httpx.Response, state: StreamState
    ) -> AsyncIterator[StreamEvent]: ...

    def parse_models(self, data: Any) -> list[str]:
        return [str(row["id"]) for row in data.get("data") or [] if row.get("id")]

    # --- the skeleton ---------------------------------------------------------------------

    async def send(
        self,
        client: httpx.AsyncClient,
        provider: ProviderConfig,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One JSON round trip with this dialect's headers."""
        return await request_json(
            client, provider, method, url, headers=self.headers(provider), body=body, params=params
        )

    async def chat(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> ChatResult:
        started = time.perf_counter()
        data = await self.send(
            client,
            provider,
            "POST",
            self.chat_url(provider, request, stream=False),
            body=self.build_body(provider, request, stream=False),
        )
        return self.parse_chat(provider, request, data, elapsed_ms(started))

    def stream(
        self, client: httpx.AsyncClient, provider: ProviderConfig, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        # run_stream's own iterator, not one that passes on each of its events: a layer less
        # per event. The request is built now; it is sent at the first event asked for.
        return run_stream(
            client,
            provider,
            request,
            self.chat_url(provider, request, stream=True),
            headers=self.headers(provider) | {"Accept": self.stream_accept},
            body=self.build_body(provider, request, stream=True),
            decode=self.decode_stream,
            params=self.stream_params,
        )

    async def embed(
        self, client: httpx.AsyncClient, provider: ProviderConfig, model: str, inputs: list[str]
    ) -> EmbeddingResult:
        raise ProviderError(
            ErrorKind.BAD_REQUEST, f"{provider.name} offers no embeddings API", provider=provider.id
        )

    async def list_models(self, client: httpx.AsyncClient, provider: ProviderConfig) -> list[str]:
        """A free call used as a health probe for idle providers."""
        if self.models_path is None:
            return []
        data = await self.send(
            client, provider, "GET", self.url(provider, self.models_path), params=self.models_params
        )
        return self.parse_models(data)
