"""A user of org A gets 404 for each org-B object by id, on every endpoint that takes an id."""

from __future__ import annotations

import pytest

from organizations.api_keys import mint_api_key
from organizations.models import ApiKey, Invitation, Membership
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_objects(other_org, outsider):
    key, _ = mint_api_key(other_org, name="theirs", created_by=outsider)
    return {
        "key": key,
        "membership": Membership.objects.get(user=outsider),
        "invitation": InvitationFactory(organization=other_org),
    }


ENDPOINTS = [
    ("get", "/api/auth/api-keys/{key}"),
    ("delete", "/api/auth/api-keys/{key}"),
    ("get", "/api/org/members/{membership}"),
    ("patch", "/api/org/members/{membership}"),
    ("delete", "/api/org/members/{membership}"),
    ("delete", "/api/org/invitations/{invitation}"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_owner_of_org_a_gets_404_for_org_b_objects(client_for, owner, foreign_objects, method, url):
    ids = {name: obj.pk for name, obj in foreign_objects.items()}
    response = getattr(client_for(owner), method)(url.format(**ids), {"role": "viewer"})
    assert response.status_code == 404
    # ... and nothing changed.
    assert not ApiKey.objects.get(pk=ids["key"]).is_revoked
    assert Membership.objects.get(pk=ids["membership"]).role == "owner"
    assert Invitation.objects.filter(pk=ids["invitation"]).exists()


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_missing_id_gets_the_same_404(client_for, owner, method, url):
    response = getattr(client_for(owner), method)(
        url.format(key=999999, membership=999999, invitation=999999), {"role": "viewer"}
    )
    assert response.status_code == 404


def test_lists_show_only_own_organization(client_for, owner, foreign_objects):
    client = client_for(owner)
    assert "theirs" not in str(client.get("/api/auth/api-keys").data)
    emails = {m["email"] for m in client.get("/api/org/members").data}
    assert emails == {owner.email}


def test_org_header_for_an_organization_one_is_not_in_is_404(client_for, owner, other_org):
    response = client_for(owner).get("/api/org", HTTP_X_ORGANIZATION="globex")
    assert response.status_code == 404


def test_api_key_sees_only_its_own_organization(api_key, api_client, other_org):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert api_client.get("/api/org").data["slug"] == "acme"
