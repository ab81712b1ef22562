"""A revoked key stops working on every process within a second, though lookups are cached."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis

from llm.api import auth
from organizations.api_keys import revoke_api_key
from organizations.models import ApiKey
from organizations.revocations import channel_for
from tests.stores import TEST_REDIS_URL, use_redis

pytestmark = pytest.mark.django_db(transaction=True)


def models(gateway, key):
    return httpx.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code


@pytest.fixture
def listening(gateway_server, settings):
    """Redis configured and the gateway's revocation listener running, as after start-up."""
    use_redis(settings)
    settings.GATEWAY_API_KEY_CACHE_SECONDS = 30

    async def start():
        return asyncio.get_running_loop().create_task(auth.listen_for_revocations())

    task = gateway_server.call(start())
    deadline = time.monotonic() + 5
    while not auth._listening and time.monotonic() < deadline:
        time.sleep(0.02)
    assert auth._listening
    yield
    gateway_server.loop.call_soon_threadsafe(task.cancel)
    while auth._listening:
        time.sleep(0.02)


def test_a_key_revoked_by_another_process_stops_within_a_second(gateway, key, listening):
    assert models(gateway, key) == 200  # now cached for 30 s
    # What another process does when it revokes: the row, then one message on the channel.
    ApiKey.objects.update(is_revoked=True)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.publish(channel_for(client), f"key:{ApiKey.objects.get().pk}")
    deadline = time.monotonic() + 1.0
    while models(gateway, key) == 200:
        assert time.monotonic() < deadline, "still accepted a second after the revocation"
        time.sleep(0.05)
    assert models(gateway, key) == 401


def test_revoking_a_key_publishes_it_for_every_process(gateway, key, listening):
    assert models(gateway, key) == 200
    client = redis.Redis.from_url(TEST_REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(channel_for(client))
    row = ApiKey.objects.get()
    revoke_api_key(row)
    message = None
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and (message is None or message["type"] != "message"):
        message = pubsub.get_message(timeout=0.1)
    assert message["data"] == f"key:{row.pk}".encode()


def test_without_a_listener_a_cached_lookup_is_trusted_for_a_second_only(gateway, key, settings):
    use_redis(settings)
    settings.GATEWAY_API_KEY_CACHE_SECONDS = 30
    assert not auth._listening
    assert models(gateway, key) == 200
    ApiKey.objects.update(is_revoked=True)  # and nothing published: Redis was away
    time.sleep(1.1)
    assert models(gateway, key) == 401


def test_without_redis_revoking_in_this_process_takes_effect_at_once(gateway, key, settings):
    settings.REDIS_URL = ""
    assert models(gateway, key) == 200
    revoke_api_key(ApiKey.objects.get())
    assert models(gateway, key) == 401
