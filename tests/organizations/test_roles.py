"""Every role rule, allowed and refused."""

from __future__ import annotations

import pytest

from organizations.api_keys import mint_api_key
from organizations.models import ApiKey, Membership, Organization
from organizations.roles import Role

pytestmark = pytest.mark.django_db


def create_key(client):
    return client.post("/api/auth/api-keys", {"name": "k"}, format="json")


def test_viewer_reads_but_cannot_create_keys(client_for, viewer):
    client = client_for(viewer)
    assert client.get("/api/org").status_code == 200
    assert client.get("/api/org/members").status_code == 200
    assert client.get("/api/auth/api-keys").status_code == 200
    assert create_key(client).status_code == 403
    assert not ApiKey.objects.exists()


def test_member_creates_and_revokes_own_keys(client_for, member):
    client = client_for(member)
    created = create_key(client)
    assert created.status_code == 201
    key_id = created.data["api_key"]["id"]
    assert client.delete(f"/api/auth/api-keys/{key_id}").status_code == 204
    assert ApiKey.objects.get(pk=key_id).is_revoked


def test_member_cannot_revoke_someone_elses_key(client_for, member, org, owner):
    key, _ = mint_api_key(org, name="owner's", created_by=owner)
    assert client_for(member).delete(f"/api/auth/api-keys/{key.pk}").status_code == 403
    key.refresh_from_db()
    assert not key.is_revoked


def test_member_sees_only_own_keys_admin_sees_all(client_for, member, admin_user, org, owner):
    mint_api_key(org, name="owner's", created_by=owner)
    mint_api_key(org, name="member's", created_by=member)
    assert [k["name"] for k in client_for(member).get("/api/auth/api-keys").data] == ["member's"]
    assert len(client_for(admin_user).get("/api/auth/api-keys").data) == 2


def test_admin_revokes_any_key(client_for, admin_user, org, owner):
    key, _ = mint_api_key(org, name="owner's", created_by=owner)
    assert client_for(admin_user).delete(f"/api/auth/api-keys/{key.pk}").status_code == 204


def test_member_cannot_manage_members_or_settings(client_for, member, viewer):
    client = client_for(member)
    target = Membership.objects.get(user=viewer)
    assert client.patch(f"/api/org/members/{target.pk}", {"role": "admin"}).status_code == 403
    assert client.post("/api/org/invitations", {"email": "x@y.z"}).status_code == 403
    assert client.patch("/api/org", {"name": "Hacked"}).status_code == 403
    assert Organization.objects.get(slug="acme").name == "Acme"


def test_admin_manages_members_and_settings(client_for, admin_user, member):
    client = client_for(admin_user)
    target = Membership.objects.get(user=member)
    response = client.patch(f"/api/org/members/{target.pk}", {"role": "viewer"})
    assert response.status_code == 200
    assert Membership.objects.get(pk=target.pk).role == Role.VIEWER
    assert client.patch("/api/org", {"name": "Acme Inc"}).data["name"] == "Acme Inc"
    assert client.delete(f"/api/org/members/{target.pk}").status_code == 204
    assert not Membership.objects.filter(pk=target.pk).exists()


def test_admin_cannot_make_owners_or_touch_owners(client_for, admin_user, member, owner):
    client = client_for(admin_user)
    promote = client.patch(
        f"/api/org/members/{Membership.objects.get(user=member).pk}", {"role": "owner"}
    )
    assert promote.status_code == 403
    owner_membership = Membership.objects.get(user=owner)
    assert (
        client.patch(f"/api/org/members/{owner_membership.pk}", {"role": "member"}).status_code
        == 403
    )
    assert client.delete(f"/api/org/members/{owner_membership.pk}").status_code == 403
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER


def test_admin_cannot_delete_organization_owner_can(client_for, admin_user, owner, org):
    assert client_for(admin_user).delete("/api/org").status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()
    assert client_for(owner).delete("/api/org").status_code == 204
    assert not Organization.objects.filter(pk=org.pk).exists()


def test_owner_promotes_another_owner_then_may_step_down(client_for, owner, admin_user):
    client = client_for(owner)
    admin_membership = Membership.objects.get(user=admin_user)
    assert (
        client.patch(f"/api/org/members/{admin_membership.pk}", {"role": "owner"}).status_code
        == 200
    )
    mine = Membership.objects.get(user=owner)
    assert client.patch(f"/api/org/members/{mine.pk}", {"role": "admin"}).status_code == 200


def test_last_owner_cannot_be_demoted(client_for, owner):
    mine = Membership.objects.get(user=owner)
    response = client_for(owner).patch(f"/api/org/members/{mine.pk}", {"role": "admin"})
    assert response.status_code == 400
    assert "last owner" in response.data["detail"]
    assert Membership.objects.get(pk=mine.pk).role == Role.OWNER


def test_last_owner_cannot_leave(client_for, owner):
    mine = Membership.objects.get(user=owner)
    response = client_for(owner).delete(f"/api/org/members/{mine.pk}")
    assert response.status_code == 400
    assert Membership.objects.filter(pk=mine.pk).exists()


def test_member_may_leave(client_for, member):
    mine = Membership.objects.get(user=member)
    assert client_for(member).delete(f"/api/org/members/{mine.pk}").status_code == 204
    member.refresh_from_db()
    assert member.current_organization is None


def test_unknown_role_is_400_naming_the_field(client_for, owner, member):
    target = Membership.objects.get(user=member)
    response = client_for(owner).patch(f"/api/org/members/{target.pk}", {"role": "god"})
    assert response.status_code == 400
    assert "role" in response.data["fields"]
