"""Failover through the live gateway, and the error answers that name the provider."""

from __future__ import annotations

import httpx
import pytest

from tests.api.loopback import Reply
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, key, body=HELLO, **headers):
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def only_record():
    [record] = wait_for_usage(1)
    return record


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retryable_upstream_error_fails_over_to_the_fallback(gateway, key, upstreams, status):
    primary, backup = upstreams
    primary.then(Reply(status=status), Reply(status=status))  # the first try and its retry
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the backup."
    assert response.headers["x-gateway-provider"] == "groq"
    assert response.headers["x-gateway-attempts"] == "3"
    assert "gpt-4o-mini" in response.headers["x-gateway-candidates"]
    record = only_record()
    assert (record.provider, record.attempts, record.status) == ("groq", 3, 200)


def test_a_passing_blip_is_retried_on_the_same_provider(gateway, key, upstreams):
    primary, backup = upstreams
    primary.then(Reply(status=503))
    response = post(gateway, key)
    assert response.headers["x-gateway-provider"] == "openai"
    assert response.headers["x-gateway-attempts"] == "2"
    assert backup.requests == []


def test_timeout_fails_over(gateway, key, upstreams, upstream_timeout):
    primary, _ = upstreams
    primary.then(Reply(delay=2.0), Reply(delay=2.0))
    upstream_timeout(0.5)
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "groq"


@pytest.mark.parametrize("status", [400, 401])
def test_no_failover_on_client_or_auth_errors(gateway, key, upstreams, status):
    primary, backup = upstreams
    primary.then(
        Reply(status=status, body={"error": {"message": "nope from upstream", "type": "x"}})
    )
    response = post(gateway, key)
    assert response.status_code == (400 if status == 400 else 502)
    error = response.json()["error"]
    assert "nope from upstream" in error["message"]
    assert error["provider"] == "openai"
    assert backup.requests == []
    record = only_record()
    assert record.status == response.status_code and record.cost == 0


def test_all_providers_failing_is_502_naming_them(gateway, key, upstreams):
    primary, backup = upstreams
    primary.then(Reply(status=500), Reply(status=500))
    backup.then(Reply(status=503), Reply(status=503))
    response = post(gateway, key)
    assert response.status_code == 502
    error = response.json()["error"]
    assert set(error["providers"]) == {"openai", "groq"}
    assert "openai" in error["message"] and "groq" in error["message"]
    record = only_record()
    assert (record.status, record.error_class, record.cost) == (502, "upstream_unavailable", 0)


def test_deadline_is_504_naming_the_provider(gateway, key, upstreams, settings):
    primary, backup = upstreams
    settings.GATEWAY_REQUEST_DEADLINE_SECONDS = 1
    primary.then(Reply(delay=3.0))
    backup.then(Reply(delay=3.0))
    response = post(gateway, key)
    assert response.status_code == 504
    assert response.json()["error"]["provider"] in {"openai", "groq"}


def test_refused_connection_fails_over(gateway, key, upstreams):
    from llm.catalog import build_catalog, get_catalog, set_catalog
    from tests.api.conftest import CATALOG, KEYS
    from tests.api.loopback import free_port

    backup_url = get_catalog().providers["groq"].base_url.removesuffix("/v1")
    dead = f"http://127.0.0.1:{free_port()}"
    set_catalog(build_catalog(CATALOG.format(primary=dead, backup=backup_url), KEYS))
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider"] == "groq"


def test_client_request_id_is_echoed(gateway, key, upstreams):
    response = post(gateway, key, **{"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    assert only_record().client_request_id == "trace-42"


def test_upstream_stream_cut_ends_with_error_event_and_records_usage(gateway, key, upstreams):
    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)[:3]
    primary.then(Reply(chunks=chunks, cut=True))
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={**HELLO, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert '"error"' in lines[-2] and lines[-1] == "data: [DONE]"
    record = only_record()
    assert record.status == 502 and record.output_tokens > 0 and record.tokens_estimated
