"""JWT for the management API: login gives a short-lived access token and a single-use refresh
token; refresh rotates; logout revokes; the access token expires by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-password"


@pytest.fixture
def user(owner):
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner


@pytest.fixture(autouse=True)
def _no_throttle_carryover():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def login(client, user):
    response = client.post(
        "/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.data
    return response.data


def me(client, access):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = client.get("/api/auth/me")
    client.credentials()
    return response


def refresh(client, token):
    return client.post("/api/auth/refresh", {"refresh": token}, format="json")


def test_login_returns_an_access_token_that_authenticates(api_client, user, settings):
    tokens = login(api_client, user)
    assert tokens["token_type"] == "Bearer"
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    assert tokens["expires_in"] == int(lifetime.total_seconds())
    assert lifetime <= timedelta(hours=1)  # short-lived
    assert me(api_client, tokens["access"]).data["email"] == user.email


def test_the_access_token_expires(api_client, user, settings):
    tokens = login(api_client, user)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    with time_machine.travel(timezone.now() + lifetime + timedelta(seconds=5)):
        response = me(api_client, tokens["access"])
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_refresh_returns_a_new_pair_and_the_old_refresh_token_stops_working(api_client, user):
    tokens = login(api_client, user)
    first = refresh(api_client, tokens["refresh"])
    assert first.status_code == 200
    assert first.data["refresh"] != tokens["refresh"]
    assert me(api_client, first.data["access"]).status_code == 200
    # Rotation: the used refresh token is blacklisted; the new one works once more.
    assert refresh(api_client, tokens["refresh"]).status_code == 401
    assert refresh(api_client, first.data["refresh"]).status_code == 200


def test_refresh_works_after_the_access_token_expired(api_client, user, settings):
    tokens = login(api_client, user)
    later = timezone.now() + settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] + timedelta(minutes=1)
    with time_machine.travel(later):
        renewed = refresh(api_client, tokens["refresh"])
        assert renewed.status_code == 200
        assert me(api_client, renewed.data["access"]).status_code == 200


def test_logout_revokes_the_refresh_token(api_client, user):
    tokens = login(api_client, user)
    response = api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 204
    refused = refresh(api_client, tokens["refresh"])
    assert refused.status_code == 401
    assert refused.data["code"] == "token_not_valid"
    # Logging out twice is refused the same way (nothing left to revoke).
    again = api_client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401


def test_logout_without_a_refresh_token_names_the_field(api_client, user):
    response = api_client.post("/api/auth/logout", {}, format="json")
    assert response.status_code == 400
    assert "refresh" in response.data["fields"]


def test_an_access_token_is_not_a_refresh_token(api_client, user):
    tokens = login(api_client, user)
    assert refresh(api_client, tokens["access"]).status_code == 401


def test_changing_the_password_revokes_issued_tokens(api_client, user):
    tokens = login(api_client, user)
    user.set_password("another-long-password")
    user.save(update_fields=["password"])
    assert me(api_client, tokens["access"]).status_code == 401


def test_a_tampered_token_is_401(api_client, user):
    tokens = login(api_client, user)
    header, payload, signature = tokens["access"].split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    assert me(api_client, forged).status_code == 401


def test_a_deactivated_user_cannot_refresh(api_client, user):
    tokens = login(api_client, user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert refresh(api_client, tokens["refresh"]).status_code == 401


def test_the_browser_session_still_works(client, user):
    client.force_login(user)
    assert client.get("/api/auth/me").json()["email"] == user.email


def test_a_stale_access_token_in_the_header_does_not_block_login_refresh_or_logout(
    api_client, user, settings
):
    tokens = login(api_client, user)
    later = timezone.now() + settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] + timedelta(minutes=1)
    with time_machine.travel(later):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")  # expired
        assert me(api_client, tokens["access"]).status_code == 401
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        renewed = refresh(api_client, tokens["refresh"])
        assert renewed.status_code == 200
        assert login(api_client, user)["access"]
        response = api_client.post(
            "/api/auth/logout", {"refresh": renewed.data["refresh"]}, format="json"
        )
        assert response.status_code == 204


def test_expired_refresh_tokens_are_forgotten_daily(api_client, user, settings):
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from accounts.tasks import flush_expired_tokens

    login(api_client, user)
    assert "flush-expired-tokens" in settings.CELERY_BEAT_SCHEDULE
    flush_expired_tokens.delay()
    assert OutstandingToken.objects.filter(user=user).count() == 1  # still valid: kept
    later = timezone.now() + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] + timedelta(hours=1)
    with time_machine.travel(later):
        flush_expired_tokens.delay()
    assert not OutstandingToken.objects.filter(user=user).exists()


def test_a_deleted_user_cannot_refresh(api_client, user):
    tokens = login(api_client, user)
    user.memberships.all().delete()
    user.delete()
    response = refresh(api_client, tokens["refresh"])
    assert response.status_code == 401
    assert response.data["code"] == "no_active_account"
