"""Under `make run` (the demo provider only), everything /v1/models lists answers: chat models
and aliases on /v1/chat/completions, embedding models and aliases on /v1/embeddings. Nothing
listed answers 503, which would make the official SDK retry before failing."""

from __future__ import annotations

import httpx
import pytest

from llm.catalog import load_catalog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_key(org, owner):
    from organizations.api_keys import mint_api_key

    org.plan = "enterprise"  # room for every call below within one minute
    org.save(update_fields=["plan"])
    return mint_api_key(org, name="demo", created_by=owner)[1]


def answer(gateway, key, name) -> tuple[str, httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    chat = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": name, "messages": [{"role": "user", "content": "Hello"}]},
        headers=headers,
        timeout=30,
    )
    if chat.status_code == 200 or chat.json()["error"]["code"] != "unsupported_capability":
        return "chat", chat
    embeddings = httpx.post(
        f"{gateway}/v1/embeddings", json={"model": name, "input": "Hello"}, headers=headers
    )
    return "embeddings", embeddings


def test_every_listed_model_and_alias_answers(demo_gateway, demo_key):
    listed = httpx.get(
        f"{demo_gateway}/v1/models", headers={"Authorization": f"Bearer {demo_key}"}
    ).json()["data"]
    names = {entry["id"] for entry in listed}
    assert {"demo-fast", "demo-smart", "demo-embed", "cheapest", "embed"} <= names
    served = {}
    for name in sorted(names):
        kind, response = answer(demo_gateway, demo_key, name)
        assert response.status_code == 200, (name, response.text)
        served[name] = kind
    assert served["demo-embed"] == served["embed"] == "embeddings"
    assert served["demo-fast"] == served["cheapest"] == "chat"


def test_aliases_with_nothing_configured_behind_them_are_not_listed(demo_gateway, demo_key):
    catalog = load_catalog(environ={"GATEWAY_DEMO_PROVIDER": "1"})
    assert "smart" in catalog.aliases  # real models only: none configured here
    listed = httpx.get(
        f"{demo_gateway}/v1/models", headers={"Authorization": f"Bearer {demo_key}"}
    ).json()["data"]
    names = {entry["id"] for entry in listed}
    assert "smart" not in names and "open-weights" not in names
    # Not listed, and asking for it still explains itself.
    response = httpx.post(
        f"{demo_gateway}/v1/chat/completions",
        json={"model": "smart", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"Authorization": f"Bearer {demo_key}"},
    )
    assert response.status_code == 503
    assert "not configured" in response.json()["error"]["message"]
