"""Under /v1/ and /api/v1/ every answer is JSON: unknown paths are 404, wrong methods 405 (with
Allow), in OpenAI's error shape, or Anthropic's under /v1/messages. And GET /v1/models/{id}."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/chat/nothing"),
        ("GET", "/v1"),
        ("DELETE", "/api/v1/nothing/here"),
        ("POST", "/api/v1/generate/extra"),
    ],
)
def test_unknown_path_is_a_json_404_in_openais_shape(gateway, key, method, path):
    response = httpx.request(method, gateway + path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "not_found_error" and error["code"] == "unknown_url"
    assert path in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/embeddings", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/v1/models/gpt-4o-mini", "GET"),
        ("GET", "/v1/responses", "POST"),
        ("GET", "/api/v1/generate", "POST"),
        ("POST", "/api/v1/models", "GET"),
        ("POST", "/api/v1/health", "GET"),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(gateway, method, path, allowed):
    response = httpx.request(method, gateway + path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/messages", 405), ("POST", "/v1/messages/batches", 404)],
)
def test_anthropic_paths_answer_in_anthropics_shape(gateway, method, path, status):
    response = httpx.request(method, gateway + path)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}


def test_retrieve_a_model_or_an_alias(gateway, key, upstreams):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    with client:
        model = client.models.retrieve("gpt-4o-mini")
        assert (model.id, model.object, model.owned_by) == ("gpt-4o-mini", "model", "openai")
        assert client.models.retrieve("small").owned_by == "gateway"
        with pytest.raises(openai.NotFoundError) as raised:
            client.models.retrieve("gpt-9")
        assert raised.value.body["code"] == "model_not_found"


def test_retrieve_a_model_needs_a_key(gateway, upstreams):
    response = httpx.get(f"{gateway}/v1/models/gpt-4o-mini")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
