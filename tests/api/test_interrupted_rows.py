"""Through the public API with Redis: each admitted call's row is held while it runs (for the
sweeper, should the process die) and let go when it settles."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import redis

from billing.inflight import PROCESS_ID, held_key
from tests.api.loopback import Reply

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


@pytest.fixture
def store(settings):
    if not settings.REDIS_URL:
        pytest.skip("the held rows live in Redis; this run has no REDIS_URL")
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def test_a_running_call_holds_its_row_and_settling_lets_it_go(gateway, key, upstreams, store):
    primary, _ = upstreams
    primary.then(Reply(body=primary.completion("gpt-4o-mini-2024-07-18"), delay=1.0))
    answers = []

    def call():
        answers.append(
            httpx.post(
                f"{gateway}/v1/chat/completions",
                json=BODY,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
        )

    thread = threading.Thread(target=call)
    thread.start()
    held = {}
    for _ in range(80):
        held = store.hgetall(held_key(PROCESS_ID))
        if held:
            break
        time.sleep(0.01)
    thread.join()

    [row] = [json.loads(value)["row"] for value in held.values()]
    assert row["input_estimated"] and row["input_tokens"] > 0 and row["status"] == 500
    assert answers[0].status_code == 200
    for _ in range(100):  # settled alongside the response
        if not store.hlen(held_key(PROCESS_ID)):
            break
        time.sleep(0.02)
    assert store.hlen(held_key(PROCESS_ID)) == 0
    assert store.zscore("gw:procs", PROCESS_ID) is not None
