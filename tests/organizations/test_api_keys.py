from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from organizations.api_keys import find_api_key, mint_api_key
from organizations.models import ApiKey

pytestmark = pytest.mark.django_db


def test_key_is_shown_once_and_stored_only_as_a_hash(client_for, owner):
    client = client_for(owner)
    created = client.post("/api/auth/api-keys", {"name": "prod"}, format="json")
    secret = created.data["key"]
    row = ApiKey.objects.get(pk=created.data["api_key"]["id"])
    public_id, _, raw_secret = secret.removeprefix("gw-").partition("_")
    assert row.public_id == public_id
    assert row.secret_hash == hashlib.sha256(raw_secret.encode()).hexdigest()
    assert raw_secret not in str(ApiKey.objects.filter(pk=row.pk).values().first())
    # Neither the list nor the detail ever shows it again.
    listed = client.get("/api/auth/api-keys").content.decode()
    detail = client.get(f"/api/auth/api-keys/{row.pk}").content.decode()
    assert raw_secret not in listed and raw_secret not in detail
    assert created.data["api_key"]["prefix"] in listed


def test_key_lookup_is_one_query(api_key, django_assert_num_queries):
    _, secret = api_key
    with django_assert_num_queries(1):
        assert find_api_key(secret) is not None


def test_wrong_secret_with_right_public_id_is_refused(api_key):
    _, secret = api_key
    assert find_api_key(secret[:-2] + "xx") is None


@pytest.mark.parametrize("raw", ["", "gw-", "gw-abc", "sk-nothing", "gw-_secret", "Bearer x"])
def test_malformed_keys_are_refused(api_key, raw):
    assert find_api_key(raw) is None


def test_revoked_key_is_refused_with_401(client_for, owner, api_key, api_client):
    row, secret = api_key
    assert client_for(owner).delete(f"/api/auth/api-keys/{row.pk}").status_code == 204
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.get("/api/org")
    assert response.status_code == 401
    assert "revoked" in response.data["detail"]


def test_expired_key_is_refused_with_401(org, owner, api_client):
    row, secret = mint_api_key(org, name="old", created_by=owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.get("/api/org").status_code == 200
    row.expires_at = timezone.now() - timedelta(seconds=1)
    row.save(update_fields=["expires_at"])
    assert api_client.get("/api/org").status_code == 401


def test_key_of_suspended_organization_is_403(org, api_key, api_client):
    org.is_suspended = True
    org.save(update_fields=["is_suspended"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert api_client.get("/api/org").status_code == 403


def test_key_with_past_expiry_cannot_be_created(client_for, owner):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = client_for(owner).post(
        "/api/auth/api-keys", {"name": "x", "expires_at": past}, format="json"
    )
    assert response.status_code == 400
    assert "expires_at" in response.data["fields"]


def test_key_records_name_creator_and_limits(client_for, member):
    response = client_for(member).post(
        "/api/auth/api-keys",
        {"name": "batch", "rate_limit_per_minute": 5, "tokens_per_minute": 1000},
        format="json",
    )
    data = response.data["api_key"]
    assert (data["name"], data["created_by"], data["rate_limit_per_minute"]) == (
        "batch",
        member.email,
        5,
    )
    assert data["tokens_per_minute"] == 1000


def test_api_key_cannot_mint_more_keys(api_key, api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert api_client.post("/api/auth/api-keys", {"name": "x"}, format="json").status_code == 403
