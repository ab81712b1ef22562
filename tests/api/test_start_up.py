"""What a serving process shares is set up once, at start-up, never by a request."""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio

from analytics import recording
from gateway_project import heap
from llm import catalog, http, runtime
from llm.circuit import CircuitBreaker, CircuitState
from llm.redis_clients import close_redis
from tests.stores import TEST_REDIS_URL, use_redis

pytestmark = pytest.mark.django_db(transaction=True)


@asynccontextmanager
async def serving():
    """The gateway's ASGI application between its lifespan's start-up and shutdown."""
    from gateway_project.asgi import application

    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    lifespan = asyncio.get_running_loop().create_task(
        application({"type": "lifespan"}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), timeout=30)
    assert started["type"] == "lifespan.startup.complete", started
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), timeout=30)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
        await lifespan
        await close_redis()


def shared_pieces() -> tuple:
    return (catalog.get_catalog(), runtime.get_runtime(), http.get_client())


async def test_a_first_request_to_health_leaves_circuit_state_shared_through_redis(settings):
    use_redis(settings)
    async with serving() as client:
        response = await client.get("/api/v1/health")
        assert response.status_code == 200

        # Another process trips a circuit; this one sees it through Redis.
        other_process = redis.asyncio.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
        breaker = CircuitBreaker(other_process)
        for _ in range(breaker.policy.failure_threshold):
            await breaker.record_failure("openai")
        await other_process.aclose()
        assert await runtime.get_runtime().breaker.state("openai") is CircuitState.OPEN


async def test_requests_create_none_of_the_shared_pieces(settings, monkeypatch):
    settings.REDIS_URL = ""
    settings.GATEWAY_USAGE_FLUSH_SECONDS = 3600
    async with serving() as client:
        before, flushers = shared_pieces(), dict(recording._flushers)

        def refuse(*args, **kwargs):
            raise AssertionError("a shared piece was created during a request")

        for module, name in [
            (catalog, "load_catalog"),
            (http, "build_client"),
            (runtime, "configure_runtime"),
            (runtime, "Runtime"),
        ]:
            monkeypatch.setattr(module, name, refuse)
        for path in ("/api/v1/health", "/v1/models", "/api/v1/models", "/v1/no-such-route"):
            assert (await client.get(path)).status_code in (200, 401, 404)

        assert shared_pieces() == before and dict(recording._flushers) == flushers


async def test_serving_freezes_start_ups_objects_and_collects_young_ones_rarely(settings):
    # With CPython's defaults a loaded worker spent about 0.2 ms a request in the collector.
    settings.REDIS_URL = ""
    default = gc.get_threshold()
    made_at_start_up = {"made": "before serving"}
    async with serving() as client:
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *default[1:])
        assert gc.get_freeze_count() > 0
        assert not any(o is made_at_start_up for o in gc.get_objects())  # frozen: never walked
        assert (await client.get("/api/v1/health")).status_code == 200
    assert gc.get_threshold() == default and gc.get_freeze_count() == 0


@pytest.mark.parametrize("getter", [catalog.get_catalog, runtime.get_runtime, http.get_client])
def test_a_piece_asked_for_before_start_up_is_an_error_not_a_default(getter, monkeypatch):
    for module, name in [(catalog, "_current"), (runtime, "_runtime"), (http, "_client")]:
        monkeypatch.setattr(module, name, None)
    with pytest.raises(RuntimeError, match="not started up"):
        getter()


async def test_a_failed_start_up_is_reported_to_the_server_not_left_waiting(monkeypatch):
    from gateway_project import startup
    from gateway_project.asgi import application

    async def broken():
        raise ConnectionError("no route to the catalogue")

    monkeypatch.setattr(startup, "start_serving", broken)
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(application({"type": "lifespan"}, inbox.get, outbox.put), 10)
    failed = outbox.get_nowait()
    assert failed["type"] == "lifespan.startup.failed"
    assert "no route to the catalogue" in failed["message"]


@pytest.mark.parametrize("cap", [12_345, 0])
async def test_the_upstream_pool_holds_as_many_connections_as_the_setting_says(settings, cap):
    # Every open stream holds an upstream connection: past the cap, new streams would queue.
    from gateway_project import startup

    settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS = cap
    client = startup.upstream_client()
    session = client.session()  # the aiohttp session it opens on first use
    try:
        assert session.connector.limit == cap  # 0: aiohttp's "no cap"
    finally:
        await client.aclose()


@pytest.mark.parametrize("shared", [False, True], ids=["embedded", "redis"])
async def test_a_stop_right_after_start_up_does_not_wait(settings, shared):
    # The embedded store's pub/sub ignored the listener's cancellation: the stop hung.
    if shared:
        use_redis(settings)
    else:
        settings.REDIS_URL = ""

    async def start_and_stop():
        async with serving():
            pass

    # A guard against the hang (which never ended), not a speed limit: a loaded machine once took
    # over 10 s to start and stop.
    await asyncio.wait_for(start_and_stop(), timeout=60)
