"""A burst of Redis calls beyond the pool waits for a connection instead of failing."""

from __future__ import annotations

import asyncio

import pytest

from llm import redis_clients
from tests.stores import use_redis


@pytest.fixture
def small_pool(settings) -> int:
    settings.GATEWAY_REDIS_MAX_CONNECTIONS = 3  # the settings hook configures the clients again
    # What is tested is waiting for a connection, not the timeouts: a machine that stalls for a
    # second (a busy virtual machine does) must not fail a connect or a wait here.
    settings.GATEWAY_REDIS_TIMEOUT_SECONDS = 10.0
    return 3


async def burst(client, calls: int) -> list[int]:
    return await asyncio.gather(*(client.incr("burst") for _ in range(calls)))


async def test_a_burst_beyond_the_embedded_pool_waits_and_all_of_it_succeeds(small_pool):
    client = redis_clients.get_embedded_redis()
    try:
        assert sorted(await burst(client, 200)) == list(range(1, 201))
        assert client.connection_pool.max_connections == small_pool
    finally:
        await redis_clients.close_redis()


async def test_a_burst_beyond_the_redis_pool_waits_and_all_of_it_succeeds(settings, small_pool):
    use_redis(settings)
    client = redis_clients.get_redis()
    try:
        assert sorted(await burst(client, 200)) == list(range(1, 201))
        pool = client.connection_pool
        assert pool.max_connections == small_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= small_pool
    finally:
        await redis_clients.close_redis()


async def test_a_loop_keeps_one_client_until_it_is_closed():
    first = redis_clients.get_redis()
    try:
        assert redis_clients.get_redis() is first
        assert redis_clients.get_embedded_redis() is redis_clients.get_embedded_redis()
    finally:
        await redis_clients.close_redis()
    again = redis_clients.get_redis()
    try:
        assert again is not first
    finally:
        await redis_clients.close_redis()
