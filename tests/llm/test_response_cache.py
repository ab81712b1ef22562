from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from llm.api.response_cache import (
    CachedResponse,
    build_cache_key,
    get_cached_response,
    should_cache,
    store_cached_response,
)
from llm.redis_clients import close_redis, get_sync_redis
from tests.stores import DEAD_REDIS_URL

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hi"}],
    "temperature": 0,
    "max_tokens": 20,
}
ANSWER = CachedResponse(
    text="Hi!",
    tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    finish_reason="tool_calls",
    usage={"input_tokens": 3, "output_tokens": 2},
    provider="openai",
    model="gpt-4o-mini-2024-07-18",
)


async def test_a_stored_answer_is_a_hit_for_the_same_request(store):
    key = build_cache_key(1, "chat.completions", REQUEST)
    assert await get_cached_response(key) is None

    await store_cached_response(key, ANSWER)

    assert (
        await get_cached_response(build_cache_key(1, "chat.completions", dict(REQUEST))) == ANSWER
    )


async def test_the_same_request_in_another_organisation_is_a_miss(store):
    await store_cached_response(build_cache_key(1, "chat.completions", REQUEST), ANSWER)

    assert await get_cached_response(build_cache_key(2, "chat.completions", REQUEST)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-haiku"},
        {"messages": [{"role": "user", "content": "Say bye"}]},
        {"max_tokens": 21},
        {"temperature": 0.5},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"response_format": {"type": "json_object"}},
        {"seed": 7},
    ],
)
async def test_any_change_that_can_change_the_answer_is_a_miss(store, change):
    await store_cached_response(build_cache_key(1, "chat.completions", REQUEST), ANSWER)

    key = build_cache_key(1, "chat.completions", {**REQUEST, **change})
    assert await get_cached_response(key) is None


def test_streaming_the_user_field_and_number_spelling_do_not_split_the_cache():
    same = {**REQUEST, "temperature": 0.0, "stream": True, "user": "u-1", "cache": True}

    assert build_cache_key(1, "chat.completions", same) == build_cache_key(
        1, "chat.completions", dict(reversed(list(REQUEST.items())))
    )
    assert build_cache_key(1, "chat.completions", REQUEST) != build_cache_key(
        1, "generate", REQUEST
    )


@pytest.mark.parametrize(
    ("body", "headers", "endpoint", "expected"),
    [
        (REQUEST, None, "chat.completions", True),
        ({**REQUEST, "temperature": 0.7}, None, "chat.completions", False),
        ({"model": "m", "messages": []}, None, "chat.completions", False),
        ({**REQUEST, "temperature": 0.7, "cache": True}, None, "chat.completions", True),
        ({**REQUEST, "cache": False}, None, "chat.completions", False),
        (REQUEST, {"Cache-Control": "no-cache"}, "chat.completions", False),
        (REQUEST, {"cache-control": "max-age=0, no-store"}, "chat.completions", False),
        ({"model": "e", "input": "text"}, None, "embeddings", True),
    ],
)
def test_should_cache_deterministic_requests_unless_opted_out(body, headers, endpoint, expected):
    assert should_cache(body, headers, endpoint) is expected


def test_the_cache_can_be_turned_off(settings):
    settings.GATEWAY_CACHE_ENABLED = False

    assert not should_cache({**REQUEST, "cache": True})


async def test_entries_carry_the_configured_ttl(store, settings):
    settings.GATEWAY_CACHE_TTL_SECONDS = 120
    key = build_cache_key(1, "chat.completions", REQUEST)
    await store_cached_response(key, ANSWER)

    assert 115 <= get_sync_redis().ttl(key) <= 120


def unavailable_count(outcome):
    labels = {"feature": "response_cache", "outcome": outcome}
    return REGISTRY.get_sample_value("gateway_redis_unavailable_total", labels) or 0


async def test_redis_down_makes_the_cache_a_miss_not_an_error(settings):
    settings.REDIS_URL = DEAD_REDIS_URL
    before = unavailable_count("miss"), unavailable_count("not_stored")
    key = build_cache_key(1, "chat.completions", REQUEST)

    await store_cached_response(key, ANSWER)
    result = await get_cached_response(key)
    await close_redis()

    assert result is None
    assert (unavailable_count("miss"), unavailable_count("not_stored")) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_an_unreadable_entry_is_a_miss(store):
    key = build_cache_key(1, "chat.completions", REQUEST)
    get_sync_redis().set(key, "not json")

    assert await get_cached_response(key) is None
