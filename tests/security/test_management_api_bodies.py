"""The management API answers hostile JSON with 400, never a 500."""

from __future__ import annotations

import pytest

from organizations.models import Invitation

pytestmark = pytest.mark.django_db

BODIES = [
    '{"email": ' + "[" * 100_000 + "]" * 100_000 + "}",  # past the recursion limit
    '{"email": ' + "[" * 100 + "]" * 100 + "}",  # past GATEWAY_MAX_JSON_DEPTH
    '{"email": "a\\ud800@acme.test", "role": "viewer"}',  # a lone surrogate
    '{"email": "x@acme.test", "role": "viewer", "note": "\\udfff"}',
]


@pytest.mark.parametrize("body", BODIES)
def test_hostile_json_is_a_400_and_changes_nothing(client_for, admin_user, body):
    response = client_for(admin_user).generic(
        "POST", "/api/org/invitations", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Invitation.objects.exists()


def test_text_plain_is_a_415(client_for, admin_user):
    response = client_for(admin_user).generic(
        "POST", "/api/org/invitations", '{"email": "x@acme.test"}', content_type="text/plain"
    )
    assert response.status_code == 415


def test_ordinary_json_still_works(client_for, admin_user):
    response = client_for(admin_user).generic(
        "POST",
        "/api/org/invitations",
        '{"email": "ok@acme.test", "role": "viewer", "n": {"a": [1, {"b": "\\ud83d\\ude00"}]}}',
        content_type="application/json",
    )
    assert response.status_code == 201
