"""A usage record for every request: success, failure, cache hit, client disconnect."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.loopback import Reply
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

DETERMINISTIC = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "What is 2+2?"}],
    "temperature": 0,
}


def post(gateway, key, body, **headers):
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def all_records(count=1):
    return wait_for_usage(count)


def test_deterministic_request_is_cached_and_the_hit_costs_nothing(gateway, key, upstreams):
    primary, _ = upstreams
    first = post(gateway, key, DETERMINISTIC)
    second = post(gateway, key, DETERMINISTIC)
    assert first.headers["x-gateway-cache"] == "MISS"
    assert second.headers["x-gateway-cache"] == "HIT"
    assert second.json()["choices"][0]["message"]["content"] == "Hello from the upstream."
    assert len(primary.requests) == 1
    miss, hit = all_records(2)
    assert (miss.cache_hit, hit.cache_hit) == (False, True)
    assert miss.cost > 0 and hit.cost == 0 and hit.input_tokens == 0
    assert second.headers["x-gateway-cost"] == "0"


def test_cache_opt_out_and_non_deterministic_requests_go_upstream(gateway, key, upstreams):
    primary, _ = upstreams
    post(gateway, key, DETERMINISTIC)
    assert (
        post(gateway, key, DETERMINISTIC, **{"Cache-Control": "no-cache"}).headers[
            "x-gateway-cache"
        ]
        != "HIT"
    )
    assert post(gateway, key, {**DETERMINISTIC, "cache": False}).headers["x-gateway-cache"] != "HIT"
    warm = {**DETERMINISTIC, "temperature": 0.9}
    post(gateway, key, warm)
    assert post(gateway, key, warm).headers["x-gateway-cache"] != "HIT"
    assert len(primary.requests) == 5


def test_cache_is_scoped_per_organization(gateway, key, upstreams, other_org, outsider):
    from organizations.api_keys import mint_api_key

    primary, _ = upstreams
    _, other_key = mint_api_key(other_org, name="theirs", created_by=outsider)
    post(gateway, key, DETERMINISTIC)
    assert post(gateway, other_key, DETERMINISTIC).headers["x-gateway-cache"] == "MISS"
    assert len(primary.requests) == 2


def test_failed_request_is_recorded_with_its_error(gateway, key, upstreams):
    primary, backup = upstreams
    primary.then(Reply(status=500), Reply(status=500))
    backup.then(Reply(status=500), Reply(status=500))
    post(gateway, key, {**DETERMINISTIC, "temperature": 1})
    [record] = all_records()
    assert (record.status, record.error_class, record.cost) == (502, "upstream_unavailable", 0)
    assert record.requested_model == "gpt-4o-mini"


async def test_client_disconnect_mid_stream_records_what_was_produced(gateway, key, upstreams):
    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)
    primary.then(Reply(chunks=chunks * 20, chunk_delay=0.05))
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/chat/completions",
            json={**DETERMINISTIC, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        received = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received += 1
            if received == 3:
                break  # hang up mid-stream
    for _ in range(100):
        records = await asyncio.to_thread(all_records)
        if records:
            break
        await asyncio.sleep(0.05)
    [record] = records
    assert record.client_disconnected and record.stream
    assert record.output_tokens > 0 and record.tokens_estimated
    # Charged for what the upstream produced until the hang-up, never the whole answer.
    assert record.output_tokens < 20 * 6
    assert record.cost > 0
