"""Metrics and logs move with real requests through the live gateway."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "the secret plan is purple elephants"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, value = line.rsplit(" ", 1)
            found = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


def scrape(gateway) -> str:
    response = httpx.get(
        f"{gateway}/metrics", headers={"Authorization": "Bearer scrape-secret"}, timeout=10
    )
    assert response.status_code == 200
    return response.text


def test_request_metrics_move_after_a_chat_completion(gateway, key, upstreams, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    labels = {"provider": "openai", "model": "gpt-4o-mini", "endpoint": "chat.completions"}
    before = scrape(gateway)
    httpx.post(
        f"{gateway}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    wait_for_usage(1)
    after = scrape(gateway)
    requests = "gateway_requests_total"
    assert (
        sample(after, requests, **labels, status_class="2xx")
        == sample(before, requests, **labels, status_class="2xx") + 1
    )
    tokens = "gateway_tokens_total"
    token_labels = {"provider": "openai", "model": "gpt-4o-mini", "direction": "output"}
    assert sample(after, tokens, **token_labels) - sample(before, tokens, **token_labels) == 6


def test_metrics_refuse_without_the_token(gateway, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert httpx.get(f"{gateway}/metrics", timeout=10).status_code == 401


def test_one_json_log_line_per_request_without_secrets(gateway, key, upstreams, caplog):
    caplog.set_level(logging.INFO, logger="gateway.requests")
    httpx.post(
        f"{gateway}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    wait_for_usage(1)  # the log line is written when the call is settled
    lines = [r for r in caplog.records if r.name == "gateway.requests"]
    assert len(lines) == 1
    from analytics.logs import JsonFormatter

    line = JsonFormatter().format(lines[0])
    data = json.loads(line)
    assert (data["provider"], data["model"], data["status"]) == ("openai", "gpt-4o-mini", 200)
    assert data["input_tokens"] == 12 and data["cost"] == "0.00000540"
    assert key not in line and "sk-test-primary" not in line
    assert PROMPT not in line  # prompt text is never logged unless the org opts in
