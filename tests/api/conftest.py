"""Fixtures for the public API: two fake upstreams and the gateway, all live on 127.0.0.1."""

from __future__ import annotations

import textwrap

import pytest

from analytics.recording import flush_pending_usage
from llm.api.auth import forget_cached_keys
from llm.catalog import build_catalog, set_catalog
from llm.http import build_client, set_client
from llm.runtime import configure_runtime
from tests.api.loopback import FakeOpenAI, ServerThread

CATALOG = textwrap.dedent(
    """\
    providers:
      openai: {{name: OpenAI, dialect: openai, base_url: "{primary}/v1"}}
      groq: {{name: Groq, dialect: openai, base_url: "{backup}/v1"}}
    models:
      - id: gpt-4o-mini
        provider: openai
        upstream: gpt-4o-mini-2024-07-18
        prices: [{{valid_from: 2024-07-18, input_per_mtok: "0.15", output_per_mtok: "0.60",
                   cached_input_per_mtok: "0.075"}}]
        context_window: 128000
        max_output_tokens: 16384
        capabilities: [chat, stream, tools, json, structured]
        quality_rank: 2
        speed_rank: 2
        fallbacks: [llama-3.1-8b]
      - id: llama-3.1-8b
        provider: groq
        upstream: llama-3.1-8b-instant
        prices: [{{valid_from: 2024-07-01, input_per_mtok: "0.05", output_per_mtok: "0.08"}}]
        context_window: 131072
        max_output_tokens: 8192
        capabilities: [chat, stream, tools, json]
        quality_rank: 3
        speed_rank: 1
      - id: text-embedding-3-small
        provider: openai
        upstream: text-embedding-3-small
        prices: [{{valid_from: 2024-01-25, input_per_mtok: "0.02"}}]
        context_window: 8191
        capabilities: [embeddings]
        quality_rank: 1
        speed_rank: 1
    aliases:
      small: [llama-3.1-8b, gpt-4o-mini]
    """
)
KEYS = {"OPENAI_API_KEY": "sk-test-primary", "GROQ_API_KEY": "gsk-test-backup"}


@pytest.fixture(scope="session")
def upstream_servers():
    primary, backup = FakeOpenAI(), FakeOpenAI(text="Hello from the backup.")
    servers = [ServerThread(primary).start(), ServerThread(backup).start()]
    yield (primary, servers[0].url), (backup, servers[1].url)
    for server in servers:
        server.stop()


@pytest.fixture
def upstreams(upstream_servers, settings):
    """(primary, backup) fakes, reset; the catalogue points at them; fresh routing state."""
    (primary, primary_url), (backup, backup_url) = upstream_servers
    for fake in (primary, backup):
        fake.script.clear()
        fake.requests.clear()
        fake.headers.clear()
    set_catalog(build_catalog(CATALOG.format(primary=primary_url, backup=backup_url), KEYS))
    configure_runtime(None)
    # Failover without real waiting: tests care about which provider answers, not the backoff.
    settings.GATEWAY_RETRY_BACKOFF_SECONDS = 0.0
    forget_cached_keys()
    yield primary, backup
    forget_cached_keys()


@pytest.fixture(scope="session")
def gateway_server():
    from gateway_project.asgi import application

    server = ServerThread(application).start()
    yield server
    server.stop()


async def _install_shared_client() -> None:
    set_client(build_client())


async def _close_shared_client() -> None:
    from llm import http

    if http._client is not None:
        await http._client.aclose()
    set_client(None)


@pytest.fixture
def gateway(gateway_server, upstreams, transactional_db, sync_store):
    """Base URL of the live gateway, with a fresh shared client made in its loop (the server
    runs without the lifespan: each test sets up what it serves with), on an emptied store
    (the database's ids start again in every run: a cached answer of an earlier run would
    be served). Afterwards the client's
    connections are closed and buffered usage records are written before the database is
    emptied."""
    gateway_server.call(_install_shared_client())
    yield gateway_server.url
    gateway_server.call(_close_shared_client())
    flush_pending_usage()


@pytest.fixture
def upstream_timeout(gateway_server):
    """use(seconds): give the gateway's shared client a shorter read timeout for one test."""

    def use(seconds: float) -> None:
        gateway_server.call(_close_shared_client())
        set_client(build_client(read_timeout=seconds, connect_timeout=seconds))

    return use


@pytest.fixture
def key(db, org, owner):
    from organizations.api_keys import mint_api_key

    return mint_api_key(org, name="sdk", created_by=owner)[1]


@pytest.fixture
def demo_gateway(gateway_server, transactional_db, plans, sync_store):
    """The live gateway as `make run` serves it: the shipped catalogue with only the demo
    provider configured (no provider key anywhere)."""
    from llm.catalog import load_catalog

    set_catalog(load_catalog(environ={"GATEWAY_DEMO_PROVIDER": "1"}))
    configure_runtime(None)
    forget_cached_keys()
    gateway_server.call(_install_shared_client())
    yield gateway_server.url
    gateway_server.call(_close_shared_client())
    flush_pending_usage()
    forget_cached_keys()
