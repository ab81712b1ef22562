from __future__ import annotations

import pytest

from llm.health import HealthPolicy, HealthState, HealthStore, probe_idle_providers
from llm.sharedstate import SharedState
from llm.types import ErrorKind

from .conftest import make_catalog

POLICY = HealthPolicy(sync_interval=0)


def shared_store(redis_client, clock, policy: HealthPolicy = POLICY) -> HealthStore:
    """A store over the shared Redis that waits for it: these tests are about the sums over a
    shared Redis, and with the production timeout (0.25 s) a loaded machine's first connect
    could send a write to the embedded store instead (a slow Redis has its own tests)."""
    state = SharedState(redis_client, clock=clock, timeout=5)
    return HealthStore(state=state, clock=clock, policy=policy)


@pytest.fixture
def health(redis_client, clock) -> HealthStore:
    return shared_store(redis_client, clock)


async def traffic(health, provider, model, *, ok=0, errors=0, limited=0, latency=100.0):
    for _ in range(ok):
        await health.record(provider, model, ok=True, latency_ms=latency, ttft_ms=latency / 4)
    for _ in range(errors):
        await health.record(provider, model, ok=False, error_kind=ErrorKind.OVERLOADED)
    for _ in range(limited):
        await health.record(provider, model, ok=False, error_kind=ErrorKind.RATE_LIMITED)
    await health.refresh(force=True)


async def test_a_provider_without_traffic_is_healthy_and_one_without_a_key_not_configured(health):
    await health.refresh(force=True)
    assert health.state("alpha") is HealthState.HEALTHY
    assert health.state("alpha", configured=False) is HealthState.NOT_CONFIGURED


async def test_states_follow_error_and_rate_limit_rates(health):
    await traffic(health, "good", "g1", ok=20)
    await traffic(health, "flaky", "f1", ok=17, errors=3)
    await traffic(health, "limited", "l1", ok=7, limited=3)
    await traffic(health, "broken", "b1", ok=2, errors=8)
    assert health.state("good") is HealthState.HEALTHY
    assert health.state("flaky") is HealthState.DEGRADED
    assert health.state("limited") is HealthState.DEGRADED
    assert health.state("broken") is HealthState.DOWN
    assert health.model_state("b1") is HealthState.DOWN
    assert health.provider_stats("limited").rate_limited_rate == pytest.approx(0.3)


async def test_latency_and_ttft_are_averages_of_successful_calls(health):
    await traffic(health, "alpha", "a1", ok=2, latency=100)
    await traffic(health, "alpha", "a1", ok=2, latency=300, errors=2)
    stats = health.model_stats("a1")
    assert stats.latency_ms == pytest.approx(200) and stats.ttft_ms == pytest.approx(50)
    assert health.latency_ms("a1") == pytest.approx(200)


async def test_old_failures_fade_so_a_recovered_provider_becomes_healthy(health, clock):
    await traffic(health, "alpha", "a1", errors=10)
    assert health.state("alpha") is HealthState.DOWN
    clock.advance(240)
    await traffic(health, "alpha", "a1", ok=10)
    assert health.state("alpha") is HealthState.HEALTHY


async def test_traffic_recorded_by_one_process_is_seen_by_another(redis_client, clock):
    writer = shared_store(redis_client, clock)
    reader = shared_store(redis_client, clock)
    await traffic(writer, "beta", "b1", errors=9, ok=1)
    await reader.refresh(force=True)
    assert reader.state("beta") is HealthState.DOWN


async def test_a_broken_redis_never_fails_recording_or_reading(clock):
    class Broken:
        def __getattr__(self, name):
            raise ConnectionError("redis is down")

    health = HealthStore(Broken(), clock=clock, policy=POLICY)
    await traffic(health, "alpha", "a1", errors=5)
    assert health.state("alpha") is HealthState.DOWN


async def test_the_report_lists_every_provider_and_model(health):
    catalog = make_catalog({"ALPHA_API_KEY": "k"})
    await traffic(health, "alpha", "a-big", ok=3)
    report = health.report(catalog)
    assert report["providers"]["alpha"]["state"] == "healthy"
    assert report["providers"]["beta"]["state"] == "not_configured"
    assert report["models"]["a-big"]["samples"] == pytest.approx(3, rel=0.2)


async def test_idle_probes_call_list_models_only_for_idle_configured_providers(fake, health, clock):
    catalog = make_catalog({"ALPHA_API_KEY": "k", "BETA_API_KEY": "k"})
    await traffic(health, "alpha", "a-big", ok=3)
    fake.list_fails = {"beta"}
    results = await probe_idle_providers(catalog, health, idle_after=60)
    # alpha is busy, gamma/local/demo are not configured: only beta is probed.
    assert fake.listed == ["beta"] and results == {"beta": False}
    assert fake.calls == []  # probes never call chat
    assert health.state("beta") is HealthState.DOWN
    # Just probed: not idle again until idle_after has passed.
    assert await probe_idle_providers(catalog, health, idle_after=60) == {}
    clock.advance(400)
    fake.list_fails = set()
    assert await probe_idle_providers(catalog, health, idle_after=60) == {
        "alpha": True,
        "beta": True,
    }
    assert health.state("beta") is HealthState.HEALTHY


async def test_write_behind_sends_counts_at_most_once_per_interval(redis_client, clock):
    store = shared_store(redis_client, clock, HealthPolicy(sync_interval=0, flush_interval=1.0))
    sent = []
    original = store.store.hincr

    async def counting_hincr(key, amounts, ttl):
        sent.append(dict(amounts))
        return await original(key, amounts, ttl)

    store.store.hincr = counting_hincr
    for _ in range(10):
        await store.record("alpha", "a1", ok=True, latency_ms=100.0)
    assert len(sent) == 1
    clock.advance(1.0)
    await store.record("alpha", "a1", ok=False, error_kind=ErrorKind.OVERLOADED)
    assert len(sent) == 2
    # Nothing is lost: the second write carries the nine buffered calls and the failure.
    assert sent[1]["p|alpha|n"] == 10 and sent[1]["p|alpha|err"] == 1
    await store.refresh(force=True)
    assert store.provider_stats("alpha").samples > 10


def test_the_probe_task_probes_idle_configured_providers(monkeypatch, settings):
    """The beat task runs the free list-models probe in its own event loop."""
    from llm.api import tasks

    seen = {}

    async def fake_probe(catalog, health, **kwargs):
        seen["configured"] = sorted(catalog.configured)
        return dict.fromkeys(catalog.configured, True)

    settings.REDIS_URL = ""
    monkeypatch.setattr("llm.health.probe_idle_providers", fake_probe)
    result = tasks.probe_idle_providers()
    assert result == dict.fromkeys(seen["configured"], True)
