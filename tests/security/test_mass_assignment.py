"""Fields a client may not set are ignored when sent: organisation, role, staff flags, key
hashes, ids, plans, tokens."""

from __future__ import annotations

import pytest

from accounts.models import User
from organizations.api_keys import hash_secret
from organizations.models import ApiKey, Invitation, Membership
from organizations.roles import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_registering_cannot_make_a_staff_user(api_client, plans):
    response = api_client.post(
        "/api/auth/register",
        {
            "email": "eve@evil.test",
            "password": "a-long-password-123",
            "organization_name": "Evil",
            "is_staff": True,
            "is_superuser": True,
            "role": "owner",
        },
        format="json",
    )
    assert response.status_code == 201
    user = User.objects.get(email="eve@evil.test")
    assert not user.is_staff and not user.is_superuser


def test_a_new_key_cannot_choose_its_organisation_owner_or_hash(client_for, member, other_org):
    chosen_hash = hash_secret("attacker-chosen")
    response = client_for(member).post(
        "/api/auth/api-keys",
        {
            "name": "k",
            "organization": other_org.pk,
            "organization_id": other_org.pk,
            "created_by": 1,
            "public_id": "aaaaaaaaaaaa",
            "secret_hash": chosen_hash,
            "is_revoked": False,
            "id": 424242,
        },
        format="json",
    )
    assert response.status_code == 201
    key = ApiKey.objects.get(pk=response.data["api_key"]["id"])
    assert key.organization_id == member.memberships.get().organization_id
    assert key.created_by == member
    assert key.secret_hash != chosen_hash and key.public_id != "aaaaaaaaaaaa"
    assert key.pk != 424242
    assert "secret_hash" not in response.data["api_key"]


def test_organisation_settings_cannot_change_plan_suspension_or_slug(client_for, owner, org):
    response = client_for(owner).patch(
        "/api/org",
        {"name": "Renamed", "plan": "enterprise", "is_suspended": True, "slug": "x", "id": 9},
        format="json",
    )
    assert response.status_code == 200
    org.refresh_from_db()
    assert (org.name, org.plan, org.is_suspended, org.slug) == ("Renamed", "free", False, "acme")


def test_a_membership_cannot_be_moved_to_another_user_or_organisation(
    client_for, admin_user, org, other_org
):
    target = MembershipFactory(organization=org, user=UserFactory(), role=Role.VIEWER)
    stranger = UserFactory()
    response = client_for(admin_user).patch(
        f"/api/org/members/{target.pk}",
        {"role": "member", "organization": other_org.pk, "user": stranger.pk},
        format="json",
    )
    assert response.status_code == 200
    target.refresh_from_db()
    assert (target.organization_id, target.user_id, target.role) == (
        org.pk,
        target.user_id,
        "member",
    )
    assert not Membership.objects.filter(user=stranger).exists()


def test_an_admin_cannot_make_themselves_owner(client_for, admin_user, org):
    mine = Membership.objects.get(user=admin_user)
    response = client_for(admin_user).patch(
        f"/api/org/members/{mine.pk}", {"role": "owner"}, format="json"
    )
    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.role == Role.ADMIN


def test_an_invitation_cannot_choose_its_organisation_token_or_state(
    client_for, admin_user, org, other_org
):
    response = client_for(admin_user).post(
        "/api/org/invitations",
        {
            "email": "new@acme.test",
            "role": "viewer",
            "organization": other_org.pk,
            "token": "chosen-token",
            "accepted_at": "2020-01-01T00:00:00Z",
            "invited_by": 1,
        },
        format="json",
    )
    assert response.status_code == 201
    invitation = Invitation.objects.get(email="new@acme.test")
    assert invitation.organization == org and invitation.token != "chosen-token"
    assert invitation.accepted_at is None and invitation.invited_by == admin_user


def test_an_invitation_without_a_role_invites_a_member(client_for, admin_user, org):
    response = client_for(admin_user).post(
        "/api/org/invitations", {"email": "plain@acme.test"}, format="json"
    )
    assert response.status_code == 201
    assert Invitation.objects.get(email="plain@acme.test").role == Role.MEMBER


def test_accepting_an_invitation_with_an_api_key_is_refused(api_client, api_key, org):
    invitation = Invitation.objects.create(organization=org, email="x@acme.test")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    response = api_client.post(f"/api/invitations/{invitation.token}/accept")
    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
