"""The original design's API: /api/v1/generate, /generate-structured, /models, /health."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.loopback import Reply

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def post(gateway, key, path, body):
    return httpx.post(
        f"{gateway}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_generate_returns_text_provider_usage_cost_and_request_id(gateway, key, upstreams):
    primary, _ = upstreams
    response = post(
        gateway,
        key,
        "/api/v1/generate",
        {"prompt": "Say hello", "model": "gpt-4o-mini", "system": "Be brief", "max_tokens": 50},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["text"] == "Hello from the upstream."
    assert (body["provider"], body["requested_model"]) == ("openai", "gpt-4o-mini")
    assert body["usage"] == {
        "input_tokens": 12,
        "output_tokens": 6,
        "total_tokens": 18,
        "estimated": False,
    }
    assert body["cost"] == "0.00000540" and body["cached"] is False
    assert body["request_id"].startswith("req_") and body["latency_ms"] >= 0
    sent = primary.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief"}
    assert sent["max_tokens"] == 50


def test_generate_with_an_alias(gateway, key, upstreams):
    response = post(gateway, key, "/api/v1/generate", {"prompt": "hi", "model": "small"})
    assert response.json()["provider"] == "groq"
    assert response.headers["x-gateway-route-alias"] == "small"


def structured_reply(primary, payload):
    body = primary.completion("gpt-4o-mini-2024-07-18")
    body["choices"][0]["message"]["content"] = json.dumps(payload)
    return Reply(body=body)


def test_generate_structured_returns_the_validated_object(gateway, key, upstreams):
    primary, _ = upstreams
    primary.then(structured_reply(primary, {"city": "Oslo", "population": 709000}))
    response = post(
        gateway,
        key,
        "/api/v1/generate-structured",
        {"prompt": "Biggest city in Norway?", "model": "gpt-4o-mini", "schema": SCHEMA},
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"city": "Oslo", "population": 709000}
    sent = primary.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == SCHEMA


def test_generate_structured_repairs_an_invalid_answer(gateway, key, upstreams):
    primary, _ = upstreams
    primary.then(
        structured_reply(primary, {"city": "Oslo"}),
        structured_reply(primary, {"city": "Oslo", "population": 709000}),
    )
    response = post(
        gateway,
        key,
        "/api/v1/generate-structured",
        {"prompt": "x", "model": "gpt-4o-mini", "schema": SCHEMA},
    )
    assert response.status_code == 200
    assert len(primary.requests) == 2
    # Both attempts are paid for.
    assert response.json()["usage"]["input_tokens"] == 24


def test_generate_structured_fails_with_422_and_the_errors(gateway, key, upstreams):
    primary, _ = upstreams
    primary.then(*[structured_reply(primary, {"city": 7}) for _ in range(3)])
    response = post(
        gateway,
        key,
        "/api/v1/generate-structured",
        {"prompt": "x", "model": "gpt-4o-mini", "schema": SCHEMA},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["attempts"] == 3
    assert any("population" in e for e in error["errors"])


def test_gateway_models_show_prices_capabilities_and_health(gateway, key, upstreams):
    response = httpx.get(
        f"{gateway}/api/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    models = {m["id"]: m for m in response.json()["models"]}
    mini = models["gpt-4o-mini"]
    assert (mini["provider"], mini["input_per_mtok"], mini["output_per_mtok"]) == (
        "openai",
        "0.15",
        "0.60",
    )
    assert mini["context_window"] == 128000 and "tools" in mini["capabilities"]
    assert mini["health"] in {"healthy", "degraded", "down", "unknown"}


def test_health_reports_each_provider(gateway, key, upstreams):
    post(gateway, key, "/api/v1/generate", {"prompt": "hi", "model": "gpt-4o-mini"})
    providers = httpx.get(f"{gateway}/api/v1/health", timeout=10).json()["providers"]
    assert set(providers) == {"openai", "groq"}
    assert providers["openai"]["state"] == "healthy"
