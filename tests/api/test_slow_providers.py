"""Slow, silent and throttling providers do not hold clients: a first-byte timeout fails over,
a stalled stream ends with a terminal error event, and a 429's Retry-After is honoured."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.api.loopback import Reply
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def short_timeouts(settings):
    settings.GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS = 0.5
    settings.GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS = 0.5


def post(gateway, key, body=HELLO):
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def stream_events(gateway, key):
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={**HELLO, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        return response, lines


def test_a_silent_provider_fails_over_after_the_first_byte_timeout(
    gateway, key, upstreams, short_timeouts
):
    primary, _ = upstreams
    primary.then(Reply(delay=3), Reply(delay=3))
    started = time.monotonic()
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "groq"
    assert time.monotonic() - started < 20  # not the 120 s deadline (a loaded machine is slow)


def test_a_silent_stream_fails_over_before_anything_reaches_the_client(
    gateway, key, upstreams, short_timeouts
):
    primary, _ = upstreams
    primary.then(Reply(stall_after=0), Reply(stall_after=0))
    started = time.monotonic()
    response, events = stream_events(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "groq"
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content") or ""
        for e in events
        if e != "[DONE]" and json.loads(e).get("choices")
    )
    assert text == "Hello from the backup."
    assert time.monotonic() - started < 20


def test_a_stalled_stream_ends_with_a_terminal_error_event(gateway, key, upstreams, short_timeouts):
    primary, _ = upstreams
    primary.then(Reply(stall_after=2))
    started = time.monotonic()
    response, events = stream_events(gateway, key)
    assert response.status_code == 200
    error = json.loads(events[-1])["error"] if events[-1] != "[DONE]" else None
    if error is None:
        error = json.loads(events[-2])["error"]
    assert "stalled" in error["message"] and "OpenAI" in error["message"]
    assert time.monotonic() - started < 20
    [record] = wait_for_usage(1)
    assert record.status == 502 and record.error_class == "upstream_timeout"
    assert record.output_tokens > 0 and record.tokens_estimated  # what arrived is billed


def test_a_429_retry_after_keeps_calls_away_from_that_provider(gateway, key, upstreams):
    primary, backup = upstreams
    primary.then(Reply(status=429, headers={"Retry-After": "120"}))
    for _ in range(10):
        response = post(gateway, key)
        assert response.status_code == 200
        assert response.headers["x-gateway-provider"] == "groq"
    assert len(primary.requests) == 1
