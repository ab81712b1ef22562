from __future__ import annotations

import pytest

from accounts.models import User
from organizations.models import Membership
from organizations.roles import Role

pytestmark = pytest.mark.django_db


def register(client, **overrides):
    data = {
        "email": "new@example.com",
        "password": "a-long-enough-password",
        "organization_name": "New Co",
    }
    return client.post("/api/auth/register", {**data, **overrides}, format="json")


def test_register_creates_organization_with_user_as_owner(api_client):
    response = register(api_client)
    assert response.status_code == 201
    user = User.objects.get(email="new@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.organization.name == "New Co"
    assert response.data["user"]["current_organization"]["slug"] == "new-co"


def test_register_returns_a_working_token_pair(api_client):
    response = register(api_client)
    assert response.data["token_type"] == "Bearer"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.data['access']}")
    assert api_client.get("/api/auth/me").data["email"] == "new@example.com"


def test_register_rejects_weak_password_naming_the_field(api_client):
    response = register(api_client, password="123")
    assert response.status_code == 400
    assert "password" in response.data["fields"]
    assert not User.objects.exists()


def test_register_rejects_duplicate_email(api_client, owner):
    response = register(api_client, email=owner.email.upper())
    assert response.status_code == 400
    assert "email" in response.data["fields"]


def test_script_goes_from_nothing_to_a_working_api_key(api_client):
    register(api_client)
    login = api_client.post(
        "/api/auth/login",
        {"email": "new@example.com", "password": "a-long-enough-password"},
        format="json",
    )
    assert login.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.data['access']}")
    created = api_client.post("/api/auth/api-keys", {"name": "ci"}, format="json")
    assert created.status_code == 201
    secret = created.data["key"]
    assert secret.startswith("gw-")
    # The key itself authenticates (it may read the organisation).
    keyed = type(api_client)()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert keyed.get("/api/org").data["slug"] == "new-co"


def test_login_with_wrong_password_is_401(api_client, owner):
    response = api_client.post(
        "/api/auth/login", {"email": owner.email, "password": "nope"}, format="json"
    )
    assert response.status_code == 401


def test_login_is_throttled(api_client, owner, settings):
    from django.core.cache import cache

    cache.clear()
    codes = [
        api_client.post(
            "/api/auth/login", {"email": owner.email, "password": "nope"}, format="json"
        ).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[-1] == 429
    cache.clear()


def test_me_lists_organizations_and_roles(client_for, owner, other_org):
    Membership.objects.create(organization=other_org, user=owner, role=Role.VIEWER)
    data = client_for(owner).get("/api/auth/me").data
    assert data["email"] == owner.email
    assert {(o["slug"], o["role"]) for o in data["organizations"]} == {
        ("acme", "owner"),
        ("globex", "viewer"),
    }


def test_me_requires_authentication(api_client):
    assert api_client.get("/api/auth/me").status_code == 401


def test_user_switches_current_organization(client_for, owner, other_org):
    Membership.objects.create(organization=other_org, user=owner, role=Role.VIEWER)
    client = client_for(owner)
    response = client.post("/api/auth/switch-organization", {"organization": "globex"})
    assert response.data["current_organization"]["slug"] == "globex"
    assert client.get("/api/org").data["slug"] == "globex"


def test_switching_to_an_organization_one_does_not_belong_to_is_404(client_for, owner, other_org):
    response = client_for(owner).post("/api/auth/switch-organization", {"organization": "globex"})
    assert response.status_code == 404


def test_browser_signup_creates_organization(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "web@example.com",
            "password1": "a-long-enough-password",
            "password2": "a-long-enough-password",
            "organization_name": "Web Co",
        },
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="web@example.com")
    assert (membership.organization.name, membership.role) == ("Web Co", Role.OWNER)
