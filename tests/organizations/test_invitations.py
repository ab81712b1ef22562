from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from organizations.models import Invitation, Membership
from organizations.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def invite(client, email="new@acme.test", role="member"):
    return client.post("/api/org/invitations", {"email": email, "role": role}, format="json")


def test_admin_invites_and_invitee_joins_with_the_role(client_for, admin_user, org):
    response = invite(client_for(admin_user), role="viewer")
    assert response.status_code == 201
    assert len(mail.outbox) == 1 and response.data["accept_url"] in mail.outbox[0].body
    token = Invitation.objects.get().token
    invitee = UserFactory(email="new@acme.test")
    accepted = client_for(invitee).post(f"/api/invitations/{token}/accept")
    assert accepted.status_code == 200
    assert Membership.objects.get(user=invitee, organization=org).role == Role.VIEWER
    invitee.refresh_from_db()
    assert invitee.current_organization == org


def test_invitation_is_single_use(client_for, admin_user):
    invite(client_for(admin_user))
    token = Invitation.objects.get().token
    invitee = UserFactory(email="new@acme.test")
    client_for(invitee).post(f"/api/invitations/{token}/accept")
    assert client_for(invitee).post(f"/api/invitations/{token}/accept").status_code == 404


def test_expired_invitation_is_refused(client_for, admin_user, org):
    invite(client_for(admin_user))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    invitee = UserFactory(email="new@acme.test")
    token = Invitation.objects.get().token
    response = client_for(invitee).post(f"/api/invitations/{token}/accept")
    assert response.status_code == 400
    assert not Membership.objects.filter(user=invitee, organization=org).exists()


def test_invitation_for_another_email_is_refused(client_for, admin_user, org, outsider):
    invite(client_for(admin_user))
    token = Invitation.objects.get().token
    assert client_for(outsider).post(f"/api/invitations/{token}/accept").status_code == 403
    assert not Membership.objects.filter(user=outsider, organization=org).exists()


def test_admin_cannot_invite_an_owner(client_for, admin_user):
    assert invite(client_for(admin_user), role="owner").status_code == 403
    assert not Invitation.objects.exists()


def test_inviting_an_existing_member_is_400(client_for, admin_user, member):
    assert invite(client_for(admin_user), email=member.email).status_code == 400


def test_invitation_accepted_in_the_browser(client, admin_user, client_for, org):
    invite(client_for(admin_user))
    token = Invitation.objects.get().token
    invitee = UserFactory(email="new@acme.test")
    client.force_login(invitee)
    page = client.get(f"/invitations/{token}/")
    assert b"Accept invitation" in page.content
    assert client.post(f"/invitations/{token}/").status_code == 302
    assert Membership.objects.filter(user=invitee, organization=org).exists()


def test_admin_withdraws_an_invitation(client_for, admin_user):
    invite(client_for(admin_user))
    pk = Invitation.objects.get().pk
    assert client_for(admin_user).delete(f"/api/org/invitations/{pk}").status_code == 204
    assert not Invitation.objects.exists()
