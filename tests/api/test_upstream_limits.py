"""An upstream answer or stream past GATEWAY_MAX_UPSTREAM_BYTES is cut off with a 502 (or a
terminal stream error) that names the provider, and it is read incrementally, never whole."""

from __future__ import annotations

import json

import httpx
import pytest

from llm.providers import limits
from tests.api.loopback import Reply

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 1024 * 1024
HUGE = 256 * CAP
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setattr(limits, "max_upstream_bytes", CAP)


def post(gateway, key, body=HELLO):
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_a_huge_answer_is_a_502_naming_the_provider(gateway, key, upstreams, capped):
    primary, backup = upstreams
    primary.then(Reply(huge=HUGE), Reply(huge=HUGE))
    backup.then(Reply(huge=HUGE), Reply(huge=HUGE))
    response = post(gateway, key)
    assert response.status_code == 502
    error = response.json()["error"]
    assert "exceeded the gateway's limit" in error["message"]
    assert "Groq" in error["message"] and set(error["providers"]) == {"openai", "groq"}
    # Read as it came and dropped at the cap: the upstream never got to send it all.
    assert primary.sent_bytes < HUGE / 4 and backup.sent_bytes < HUGE / 4


def test_a_huge_answer_fails_over_to_a_sane_one(gateway, key, upstreams, capped):
    primary, backup = upstreams
    primary.then(Reply(huge=HUGE), Reply(huge=HUGE))
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "groq"


def test_a_stream_past_the_cap_ends_with_an_error_event(gateway, key, upstreams, capped):
    primary, _ = upstreams
    primary.then(Reply(huge=HUGE))
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={**HELLO, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" or "error" in json.loads(events[-1])
    errors = [json.loads(e)["error"] for e in events if e != "[DONE]" and "error" in json.loads(e)]
    assert errors and "exceeded the gateway's limit" in errors[0]["message"]
    assert "OpenAI" in errors[0]["message"]
    assert primary.sent_bytes < HUGE / 4


def test_answers_under_the_cap_are_untouched(gateway, key, upstreams, capped):
    assert post(gateway, key).status_code == 200
