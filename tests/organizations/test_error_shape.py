"""The management API answers every error in one shape: {"detail", "code"} (+ "fields")."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def assert_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"detail", "code", "fields"}
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["code"] == code
    return body


def test_invalid_input_names_each_field(client_for, admin_user):
    response = client_for(admin_user).post("/api/org/invitations", {"role": "king"}, format="json")
    body = assert_shape(response, 400, "invalid")
    assert {"email", "role"} <= set(body["fields"])
    assert all(isinstance(m, str) for messages in body["fields"].values() for m in messages)


def test_not_authenticated(api_client):
    assert_shape(api_client.get("/api/org"), 401, "not_authenticated")


def test_a_bad_token(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_shape(api_client.get("/api/org"), 401, "token_not_valid")


def test_not_allowed_for_the_role(client_for, viewer):
    response = client_for(viewer).patch("/api/org", {"name": "Nope"}, format="json")
    assert_shape(response, 403, "permission_denied")


def test_a_rule_violation(client_for, owner):
    response = client_for(owner).delete(f"/api/org/members/{owner.memberships.get().pk}")
    assert_shape(response, 400, "rule_violation")


def test_another_organizations_object_is_not_found(client_for, owner, outsider):
    other = outsider.memberships.get()
    assert_shape(client_for(owner).delete(f"/api/org/members/{other.pk}"), 404, "not_found")


def test_wrong_method(client_for, owner):
    assert_shape(client_for(owner).put("/api/auth/me", {}), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/auth/nope", "/api/org/x/y/z"])
def test_unknown_paths_under_api_answer_json(api_client, path):
    assert_shape(api_client.get(path), 404, "not_found")
