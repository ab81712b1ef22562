from __future__ import annotations

import pytest

from llm.circuit import CircuitBreaker, CircuitPolicy, CircuitState

from .conftest import FakeClock

POLICY = CircuitPolicy(failure_threshold=3, error_rate_threshold=0.5, min_calls=10, cooldown=30)


async def allowed(breaker: CircuitBreaker, provider: str) -> bool:
    """May a call go to provider now? In half-open, only the single probe ticket holder may."""
    return await breaker.gate(provider) is None


@pytest.fixture
def breaker(redis_client, clock) -> CircuitBreaker:
    return CircuitBreaker(redis_client, clock=clock, policy=POLICY)


async def test_the_circuit_opens_after_consecutive_failures(breaker):
    for _ in range(2):
        await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.CLOSED
    await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.OPEN
    assert not await allowed(breaker, "alpha")
    assert await breaker.open_providers(["alpha", "beta"]) == {"alpha"}


async def test_a_success_resets_the_consecutive_count(breaker):
    for _ in range(2):
        await breaker.record_failure("alpha")
    await breaker.record_success("alpha")
    for _ in range(2):
        await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.CLOSED


async def test_the_circuit_opens_on_the_error_rate_over_the_window(breaker):
    # Alternate success/failure: never 3 in a row, but half of 10+ calls fail.
    for _ in range(5):
        await breaker.record_success("alpha")
        await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.OPEN


async def test_after_the_cool_down_one_probe_is_let_through_and_success_closes(breaker, clock):
    for _ in range(3):
        await breaker.record_failure("alpha")
    clock.advance(29)
    assert not await allowed(breaker, "alpha")
    clock.advance(2)
    assert await breaker.state("alpha") is CircuitState.HALF_OPEN
    assert await breaker.open_providers(["alpha"]) == frozenset()
    assert await allowed(breaker, "alpha")  # the probe
    assert not await allowed(breaker, "alpha")  # everyone else waits for it
    await breaker.record_success("alpha")
    assert await breaker.state("alpha") is CircuitState.CLOSED
    assert await allowed(breaker, "alpha")


async def test_a_failed_probe_reopens_for_a_fresh_cool_down(breaker, clock):
    for _ in range(3):
        await breaker.record_failure("alpha")
    clock.advance(31)
    assert await allowed(breaker, "alpha")
    await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.OPEN
    clock.advance(20)
    assert not await allowed(breaker, "alpha")
    clock.advance(11)
    assert await allowed(breaker, "alpha")  # a new probe ticket for the new opening


async def test_state_is_shared_between_breakers_on_the_same_redis(redis_client, clock):
    one = CircuitBreaker(redis_client, clock=clock, policy=POLICY)
    two = CircuitBreaker(redis_client, clock=clock, policy=POLICY)
    for _ in range(3):
        await one.record_failure("beta")
    assert await two.state("beta") is CircuitState.OPEN
    clock.advance(31)
    assert await allowed(two, "beta") and not await allowed(one, "beta")


async def test_a_broken_redis_degrades_to_local_state_instead_of_failing():
    class Broken:
        def __getattr__(self, name):
            raise ConnectionError("redis is down")

    clock = FakeClock()
    breaker = CircuitBreaker(Broken(), clock=clock, policy=POLICY)
    for _ in range(3):
        await breaker.record_failure("alpha")
    assert await breaker.state("alpha") is CircuitState.OPEN


async def test_batched_breaker_writes_successes_at_most_once_per_interval(redis_client, clock):
    batched = CircuitBreaker(
        redis_client, clock=clock, policy=CircuitPolicy(failure_threshold=3, sync_interval=1.0)
    )
    writes = []
    original = batched.store.delete

    async def counting_delete(*keys):
        writes.append(keys)
        await original(*keys)

    batched.store.delete = counting_delete
    for _ in range(50):
        await batched.record_success("alpha")
    assert len(writes) == 1  # the first success, then nothing until the interval passes
    clock.advance(1.0)
    await batched.record_success("alpha")
    assert len(writes) == 2


async def test_batched_breaker_still_opens_at_once_on_failures(redis_client, clock):
    batched = CircuitBreaker(
        redis_client, clock=clock, policy=CircuitPolicy(failure_threshold=3, sync_interval=60)
    )
    assert await batched.open_providers(["alpha"]) == frozenset()
    for _ in range(3):
        await batched.record_failure("alpha")
    # Its own trip is seen immediately, though the open list is otherwise cached for 60 s.
    assert await batched.open_providers(["alpha"]) == {"alpha"}


async def test_a_batched_gate_reads_a_clear_provider_once_per_interval(redis_client, clock):
    policy = CircuitPolicy(failure_threshold=3, cooldown=30, sync_interval=1.0)
    batched = CircuitBreaker(redis_client, clock=clock, policy=policy)
    other_process = CircuitBreaker(redis_client, clock=clock, policy=policy)
    reads = []
    original = batched.store.get_many

    async def counting_get_many(keys):
        reads.append(keys)
        return await original(keys)

    batched.store.get_many = counting_get_many
    for _ in range(20):
        assert await allowed(batched, "alpha")
    assert len(reads) == 1

    # Another process opens the circuit: seen once the interval has passed, not before.
    for _ in range(3):
        await other_process.record_failure("alpha")
    assert await allowed(batched, "alpha")
    clock.advance(1.0)
    assert not await allowed(batched, "alpha")
    assert not await allowed(batched, "alpha")  # a closed gate is never cached
    assert len(reads) == 3


async def test_a_batched_gate_sees_its_own_failure_and_back_off_at_once(redis_client, clock):
    policy = CircuitPolicy(failure_threshold=1, cooldown=30, sync_interval=60)
    batched = CircuitBreaker(redis_client, clock=clock, policy=policy)
    assert await allowed(batched, "alpha") and await allowed(batched, "beta")
    await batched.record_failure("alpha")
    await batched.back_off("beta", 5)
    assert await batched.gate("alpha") == ("circuit_open", 30)
    assert (await batched.gate("beta"))[0] == "backing_off"
