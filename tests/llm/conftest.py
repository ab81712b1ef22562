"""Fakes for the llm core: a scripted dialect, a controllable clock, a small catalogue."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from llm import http
from llm.catalog import Catalog, build_catalog
from llm.circuit import CircuitBreaker, CircuitPolicy
from llm.health import HealthPolicy, HealthStore
from llm.providers import register_dialect
from llm.runtime import Runtime
from llm.sharedstate import SharedState
from llm.types import (
    ChatResult,
    EmbeddingResult,
    ErrorKind,
    ProviderError,
    StreamEvent,
    StreamEventType,
    Usage,
)
from tests.stores import TEST_REDIS_URL, redis_unreachable_reason

TEST_CATALOG = textwrap.dedent(
    """\
    providers:
      alpha: {name: Alpha, dialect: openai, base_url: https://alpha.example/v1}
      beta: {name: Beta, dialect: anthropic, base_url: https://beta.example}
      gamma: {name: Gamma, dialect: openai, base_url: https://gamma.example/v1}
      local: {name: Local, dialect: ollama, base_url: http://localhost:11434, requires_key: false,
              enabled_by: LOCAL_BASE_URL}
      demo: {name: Demo, dialect: demo, base_url: demo://local, requires_key: false,
             enabled_by: GATEWAY_DEMO_PROVIDER}
    models:
      - id: a-big
        provider: alpha
        upstream: alpha-big-2025
        prices: [{valid_from: 2025-01-01, input_per_mtok: "4.00", output_per_mtok: "16.00"}]
        context_window: 100000
        capabilities: [chat, stream, tools, structured, vision]
        quality_rank: 1
        speed_rank: 4
        fallbacks: [b-mid, g-cheap]
      - id: a-small
        provider: alpha
        upstream: alpha-small
        prices: [{valid_from: 2025-01-01, input_per_mtok: "0.50", output_per_mtok: "1.50"}]
        context_window: 100000
        capabilities: [chat, stream, tools]
        quality_rank: 3
        speed_rank: 1
      - id: b-mid
        provider: beta
        upstream: beta-mid
        prices:
          - {valid_from: 2025-01-01, input_per_mtok: "3.00", output_per_mtok: "15.00",
             cached_input_per_mtok: "0.30"}
          - {valid_from: 2025-06-01, input_per_mtok: "2.00", output_per_mtok: "10.00",
             cached_input_per_mtok: "0.20"}
        context_window: 200000
        capabilities: [chat, stream, tools, structured]
        quality_rank: 2
        speed_rank: 3
      - id: g-cheap
        provider: gamma
        upstream: gamma-cheap
        prices: [{valid_from: 2025-01-01, input_per_mtok: "0.10", output_per_mtok: "0.20"}]
        context_window: 32000
        capabilities: [chat, stream]
        quality_rank: 4
        speed_rank: 2
      - id: l-free
        provider: local
        upstream: llama
        prices: [{valid_from: 2025-01-01, input_per_mtok: "0", output_per_mtok: "0"}]
        context_window: 8000
        capabilities: [chat, stream]
        quality_rank: 5
        speed_rank: 5
      - id: demo-fast
        provider: demo
        upstream: demo-fast
        demo: true
        prices: [{valid_from: 2025-01-01, input_per_mtok: "0", output_per_mtok: "0"}]
        context_window: 8000
        capabilities: [chat, stream, tools]
        quality_rank: 9
        speed_rank: 1
      - id: emb
        provider: alpha
        upstream: alpha-embed
        prices: [{valid_from: 2025-01-01, input_per_mtok: "0.02"}]
        context_window: 8000
        capabilities: [embeddings]
        quality_rank: 1
        speed_rank: 1
    aliases:
      pair: [b-mid, a-small]
      cheap-tools:
        strategy: cheapest
        filters: {capabilities: [tools]}
    """
)

KEYS = {"ALPHA_API_KEY": "ka", "BETA_API_KEY": "kb", "GAMMA_API_KEY": "kg"}
NOW = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog() -> Catalog:
    return build_catalog(TEST_CATALOG, KEYS, source="test.yaml")


def make_catalog(environ: dict[str, str]) -> Catalog:
    return build_catalog(TEST_CATALOG, environ, source="test.yaml")


class FakeClock:
    """Wall clock and monotonic clock in one; sleep() advances it instead of waiting."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ok_result(text: str = "hi", *, usage: Usage | None = None) -> ChatResult:
    return ChatResult(
        text=text,
        finish_reason="stop",
        usage=usage or Usage(input_tokens=1000, output_tokens=500),
        provider="",
        model="",
    )


def fail(kind: ErrorKind, *, status: int | None = None, retry_after: float | None = None):
    return ProviderError(
        kind, f"{kind} happened", provider="?", status=status, retry_after=retry_after
    )


Outcome = ChatResult | ProviderError | Callable[[], Any]


@dataclass
class FakeDialect:
    """Answers from per-upstream-model scripts; an empty script means a default success."""

    name: str
    clock: FakeClock | None = None
    latency: float = 0.0
    chats: dict[str, list[Outcome]] = field(default_factory=dict)
    streams: dict[str, list[Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    list_fails: set[str] = field(default_factory=set)

    async def chat(self, client, provider, request) -> ChatResult:
        self.calls.append((provider.id, request.model))
        if self.clock is not None:
            self.clock.advance(self.latency)
        script = self.chats.get(request.model) or []
        outcome = script.pop(0) if script else ok_result()
        if callable(outcome) and not isinstance(outcome, ChatResult | ProviderError):
            outcome = await outcome()
        if isinstance(outcome, ProviderError):
            outcome.provider = provider.id
            raise outcome
        outcome.provider, outcome.model = provider.id, request.model
        return outcome

    async def stream(self, client, provider, request) -> AsyncIterator[StreamEvent]:
        self.calls.append((provider.id, request.model))
        script = self.streams.get(request.model)
        items = (
            script.pop(0) if script else [StreamEvent(StreamEventType.DONE, finish_reason="stop")]
        )
        for item in items:
            if isinstance(item, ProviderError):
                item.provider = provider.id
                raise item
            if self.clock is not None:
                self.clock.advance(self.latency)
            yield item

    async def embed(self, client, provider, model, inputs) -> EmbeddingResult:
        self.calls.append((provider.id, model))
        script = self.chats.get(model) or []
        outcome = script.pop(0) if script else None
        if isinstance(outcome, ProviderError):
            outcome.provider = provider.id
            raise outcome
        usage = Usage(input_tokens=sum(len(i.split()) for i in inputs))
        return EmbeddingResult([[0.1, 0.2] for _ in inputs], usage, provider.id, model)

    async def list_models(self, client, provider) -> list[str]:
        self.listed.append(provider.id)
        if provider.id in self.list_fails:
            raise ProviderError(ErrorKind.CONNECTION, "refused", provider=provider.id)
        return ["m"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the fake dialect sent a request: {request.url}")


@pytest.fixture
def fake(clock: FakeClock):
    """One scripted dialect installed under every dialect name the test catalogue uses."""
    dialect = FakeDialect("fake", clock=clock)
    names = ["openai", "anthropic", "ollama", "demo"]
    for name in names:
        register_dialect(name, dialect)
    # Code that takes the process's HTTP client gets one that refuses every call: the fake
    # dialect never sends a request (the conftest one level up restores the previous client).
    http.set_client(httpx.AsyncClient(transport=httpx.MockTransport(_no_network)))
    yield dialect
    for name in names:
        register_dialect(name, None)


def make_runtime(clock: FakeClock, redis: Any = None, **breaker: Any) -> Runtime:
    state = SharedState(redis, clock=clock)
    return Runtime(
        health=HealthStore(state=state, clock=clock, policy=HealthPolicy(sync_interval=0)),
        breaker=CircuitBreaker(state=state, clock=clock, policy=CircuitPolicy(**breaker)),
        client=lambda: None,  # the fake dialect never touches HTTP
        sleep=clock.sleep,
        monotonic=clock,
        utcnow=lambda: NOW,
        jitter=lambda: 1.0,
    )


@pytest.fixture
def runtime(clock: FakeClock) -> Runtime:
    return make_runtime(clock)


@pytest.fixture
async def redis_client():
    """The suite's own real Redis (emptied) when it was handed one, else a fresh fakeredis."""
    if redis_unreachable_reason():
        import fakeredis

        client = fakeredis.FakeAsyncRedis()
        yield client
        await client.aclose()
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)
