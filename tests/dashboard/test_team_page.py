from __future__ import annotations

import pytest
from django.core import mail

from organizations.models import Invitation, Membership
from tests.factories import InvitationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_inviting_sends_the_link_and_lists_the_invitation(browser, admin_user, org):
    client = browser(admin_user)
    response = client.post(
        "/dashboard/team/invite/", {"email": "New@Example.com", "role": "member"}
    )
    assert response.url == "/dashboard/team/"
    invitation = Invitation.objects.get(organization=org)
    assert invitation.email == "new@example.com" and invitation.invited_by == admin_user
    assert invitation.token in mail.outbox[0].body
    page = client.get("/dashboard/team/").content.decode()
    assert "new@example.com" in page and invitation.token in page  # the link, in the message


def test_invitation_errors_appear_next_to_the_field(browser, admin_user, member):
    client = browser(admin_user)
    response = client.post("/dashboard/team/invite/", {"email": member.email, "role": "member"})
    assert response.status_code == 400
    assert f'id="id_email_error"><li>{member.email} is already a member.' in (
        response.content.decode()
    )
    response = client.post("/dashboard/team/invite/", {"email": "x@example.com", "role": "owner"})
    assert response.status_code == 400  # admins cannot grant ownership: not even a choice
    assert 'id="id_role_error"' in response.content.decode()
    assert not Invitation.objects.exists()


def test_admins_are_offered_roles_up_to_their_own(browser, admin_user, owner):
    html = browser(admin_user).get("/dashboard/team/").content.decode()
    invite_form = html[html.index('id="id_role"') :]
    assert 'value="admin"' in invite_form and 'value="owner"' not in invite_form


def test_changing_a_role_follows_the_rules(browser, owner, admin_user, member):
    client = browser(admin_user)
    membership = Membership.objects.get(user=member)
    assert client.post(f"/dashboard/team/members/{membership.pk}/role/", {"role": "admin"}).url
    membership.refresh_from_db()
    assert membership.role == "admin"
    owner_membership = Membership.objects.get(user=owner)
    response = client.post(
        f"/dashboard/team/members/{owner_membership.pk}/role/", {"role": "viewer"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="role-{owner_membership.pk}-error" role="alert">Only an owner' in html
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"


def test_the_last_owner_cannot_leave(browser, owner):
    membership = Membership.objects.get(user=owner)
    response = browser(owner).post(f"/dashboard/team/members/{membership.pk}/remove/")
    assert response.status_code == 400
    assert "The last owner cannot leave" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_removing_a_member_after_confirmation(browser, admin_user, member):
    membership = Membership.objects.get(user=member)
    client = browser(admin_user)
    assert (
        "lose access"
        in client.get(f"/dashboard/team/members/{membership.pk}/remove/").content.decode()
    )
    assert client.post(f"/dashboard/team/members/{membership.pk}/remove/").url == "/dashboard/team/"
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_anyone_may_leave(browser, viewer, owner):
    membership = Membership.objects.get(user=viewer)
    assert browser(viewer).post(f"/dashboard/team/members/{membership.pk}/remove/").url == "/"
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_cancelling_an_invitation(browser, admin_user, org):
    invitation = InvitationFactory(organization=org)
    assert browser(admin_user).post(f"/dashboard/team/invitations/{invitation.pk}/cancel/").url
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_the_team_page_costs_the_same_queries_for_a_large_team(
    browser, owner, org, constant_queries
):
    def more_people():
        for _ in range(12):
            MembershipFactory(organization=org)
            InvitationFactory(organization=org)

    assert constant_queries(browser(owner), "/dashboard/team/", more_people) <= 8
