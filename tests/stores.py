"""Run a test against both stores: in-process (no REDIS_URL) and a real Redis.

The Redis is GATEWAY_TEST_REDIS_URL, a database handed to the suite (CI sets it): it is emptied
before each test, so never point it at data you keep. Without it, or when it cannot be reached,
tests needing Redis are skipped, saying why; the suite never touches a Redis it was not given.
"""

from __future__ import annotations

import os

import pytest
import redis

from gateway_project.redis_client import close_redis

TEST_REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def redis_unreachable_reason() -> str:
    if not TEST_REDIS_URL:
        return "GATEWAY_TEST_REDIS_URL is not set: no Redis was handed to the suite"
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {TEST_REDIS_URL} is unreachable ({type(exc).__name__})"
    return ""


def flush_test_redis() -> redis.Redis:
    client = redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    client.flushdb()
    return client


def use_redis(settings) -> redis.Redis:
    reason = redis_unreachable_reason()
    if reason:
        pytest.skip(reason)
    settings.REDIS_URL = TEST_REDIS_URL
    return flush_test_redis()


def make_store_fixture(clear_in_process):
    """A fixture parametrised over "memory" and "redis"; `clear_in_process()` resets the former."""

    @pytest.fixture(params=["memory", "redis"])
    async def store(request, settings):
        if request.param == "redis":
            use_redis(settings)
        else:
            settings.REDIS_URL = ""
        clear_in_process()
        yield request.param
        await close_redis()

    return store
