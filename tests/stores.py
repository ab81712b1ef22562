"""The Redis a test runs on: the suite's own real Redis when it was handed one, else the
embedded store (llm/redis_clients.py). Either way the code path is the same.

The Redis is GATEWAY_TEST_REDIS_URL, a database handed to the suite (CI sets it, and `make test`
points REDIS_URL at it): it is emptied before each test that uses it, so never point it at data
you keep. Without it, or when it cannot be reached, tests that need a real Redis (several
processes, a Redis that fails) are skipped, saying why; the suite never touches a Redis it was not
given.
"""

from __future__ import annotations

import os

import pytest
import redis

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
    """Run this test on the suite's real Redis (emptied), or skip it."""
    reason = redis_unreachable_reason()
    if reason:
        pytest.skip(reason)
    settings.REDIS_URL = TEST_REDIS_URL
    return flush_test_redis()
