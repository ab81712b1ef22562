"""Every bad input gets a clear error in the endpoint's shape, and nothing billable is recorded."""

from __future__ import annotations

import json

import pytest

from analytics.models import UsageRecord
from analytics.recording import flush_pending_usage

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def post(client, key, upstreams):
    def send(body, path="/v1/chat/completions", **extra):
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return client.post(
            path,
            data=data,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
            **extra,
        )

    return send


def assert_nothing_billable():
    flush_pending_usage()
    assert all(r.cost == 0 and r.provider == "" for r in UsageRecord.objects.all())


@pytest.mark.parametrize(
    ("body", "param", "status"),
    [
        (b"{not json", None, 400),
        (b"[1, 2]", None, 400),
        ({"messages": MESSAGES}, "model", 400),
        ({"model": "gpt-4o-mini"}, "messages", 400),
        ({"model": "gpt-4o-mini", "messages": []}, "messages", 400),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "  "}]},
            "messages[0].content",
            400,
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
            400,
        ),
        ({"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": "hot"}, "temperature", 400),
        ({"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": -5}, "max_tokens", 400),
        ({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": "yes"}, "stream", 400),
        ({"model": "gpt-4o-mini", "messages": MESSAGES, "frobnicate": 1}, "frobnicate", 400),
        (
            {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 10_000_000},
            "max_tokens",
            400,
        ),
        ({"model": "no-such-model", "messages": MESSAGES}, "model", 404),
    ],
)
def test_bad_chat_input(post, body, param, status):
    response = post(body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"]
    assert_nothing_billable()


def test_unknown_model_lists_what_exists(post):
    error = post({"model": "gpt-9", "messages": MESSAGES}).json()["error"]
    assert "gpt-4o-mini" in error["available"] and "cheapest" in error["available"]


def test_huge_body_is_413(post, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    response = post({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert response.status_code == 413
    assert "1000" in response.json()["error"]["message"]
    assert_nothing_billable()


def test_model_the_plan_does_not_allow_is_403(post, monkeypatch):
    from dataclasses import replace

    from billing import limits

    restricted = replace(limits.FREE, allowed_models=frozenset({"llama-3.1-8b"}))
    monkeypatch.setattr("llm.api.auth.limits_for_plan", lambda slug: restricted)
    response = post({"model": "gpt-4o-mini", "messages": MESSAGES})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"


def test_missing_key_is_401(client, upstreams):
    response = client.post(
        "/v1/chat/completions", data=json.dumps({}), content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_suspended_organization_is_403(post, org):
    org.is_suspended = True
    org.save(update_fields=["is_suspended"])
    assert post({"model": "gpt-4o-mini", "messages": MESSAGES}).status_code == 403


def test_wrong_method_is_405(client, key, upstreams):
    assert client.get("/v1/chat/completions").status_code == 405


def test_bad_generate_input(post):
    response = post({"model": "gpt-4o-mini"}, path="/api/v1/generate")
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"
    response = post({"prompt": "x", "schema": "nope"}, path="/api/v1/generate-structured")
    assert response.status_code == 400 and response.json()["error"]["param"] == "schema"


def test_bad_embeddings_input(post):
    response = post({"model": "text-embedding-3-small", "input": []}, path="/v1/embeddings")
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
    response = post({"model": "gpt-4o-mini", "input": "x"}, path="/v1/embeddings")
    assert response.status_code == 400
