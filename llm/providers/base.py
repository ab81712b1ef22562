"""The contract every wire dialect implements.

A dialect is stateless: it gets the shared httpx client, a ProviderConfig and a ChatRequest, and
returns plain values or raises ProviderError. Providers are data; dialects are code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx

from llm.types import ChatRequest, ChatResult, EmbeddingResult, ProviderConfig, StreamEvent


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
