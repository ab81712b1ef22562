"""Every dashboard page: who gets in, what each role sees, what the server refuses, and that
another organisation's ids answer 404."""

from __future__ import annotations

import pytest

from organizations.api_keys import mint_api_key
from organizations.models import Invitation, Membership
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/analytics/",
    "/dashboard/requests/",
    "/dashboard/keys/",
    "/dashboard/team/",
    "/dashboard/settings/",
    "/dashboard/settings/alerts/",
    "/dashboard/playground/",
    "/dashboard/models/",
    "/billing/",
    "/billing/plan-usage/",
]
ROLES = ["owner", "admin_user", "member", "viewer"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("path", PAGES)
def test_every_role_sees_every_page_inside_the_layout(who, path, request, browser):
    response = browser(request.getfixturevalue(who)).get(path)
    assert response.status_code == 200
    html = response.content.decode()
    if not path.endswith(("plan-usage/", "alerts/")):  # partials have no layout
        assert '<nav class="tabs" aria-label="Dashboard">' in html
        assert 'aria-current="page"' in html


def test_a_user_without_organisation_goes_home(browser, outsider):
    Membership.objects.filter(user=outsider).delete()
    outsider.current_organization = None
    outsider.save()
    assert browser(outsider).get("/dashboard/").url == "/"


def test_viewers_see_no_controls(browser, viewer, org, owner, member):
    client = browser(viewer)
    mint_api_key(org, name="shared", created_by=owner)
    keys = client.get("/dashboard/keys/").content.decode()
    assert "shared" in keys
    assert 'id="create-key"' not in keys and "Revoke" not in keys
    team = client.get("/dashboard/team/").content.decode()
    assert member.email in team
    assert 'id="send-invitation"' not in team and 'name="role"' not in team
    assert "Remove" not in team
    settings = client.get("/dashboard/settings/").content.decode()
    assert 'id="save-settings"' not in settings
    assert 'name="name" value="Acme" maxlength="100" required disabled' in settings
    alerts = client.get("/dashboard/settings/alerts/").content.decode()
    assert "Save alerts" not in alerts and "disabled" in alerts
    playground = client.get("/dashboard/playground/").content.decode()
    assert 'id="send-prompt"' not in playground and "Viewers can look" in playground


def test_admins_see_every_control(browser, admin_user, org, member):
    mint_api_key(org, name="members key", created_by=member)
    client = browser(admin_user)
    keys = client.get("/dashboard/keys/").content.decode()
    assert 'id="create-key"' in keys and "Revoke members key" in keys
    team = client.get("/dashboard/team/").content.decode()
    assert 'id="send-invitation"' in team and f"Remove {member.email}" in team
    assert 'id="save-settings"' in client.get("/dashboard/settings/").content.decode()


def test_the_server_refuses_viewers_anyway(browser, viewer, org, owner, member):
    client = browser(viewer)
    key, _ = mint_api_key(org, name="shared", created_by=owner)
    membership = Membership.objects.get(user=member)
    invitation = InvitationFactory(organization=org)
    refused = [
        ("/dashboard/keys/", {"name": "mine"}),
        (f"/dashboard/keys/{key.pk}/revoke/", {}),
        ("/dashboard/team/invite/", {"email": "x@example.com", "role": "member"}),
        (f"/dashboard/team/members/{membership.pk}/role/", {"role": "admin"}),
        (f"/dashboard/team/members/{membership.pk}/remove/", {}),
        (f"/dashboard/team/invitations/{invitation.pk}/cancel/", {}),
        ("/dashboard/settings/", {"name": "Hijacked"}),
        ("/dashboard/settings/alerts/", {"emails": "spy@example.com"}),
        ("/dashboard/playground/send/", {"model": "gpt-4o-mini", "prompt": "hi"}),
    ]
    for path, data in refused:
        response = client.post(path, data)
        assert response.status_code == 403, path
    org.refresh_from_db()
    key.refresh_from_db()
    assert org.name == "Acme" and not key.is_revoked
    assert Membership.objects.filter(pk=membership.pk, role="member").exists()
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    assert not org.api_keys.filter(name="mine").exists()


def test_a_403_is_a_page_not_a_stack_trace(browser, viewer):
    response = browser(viewer).post("/dashboard/settings/", {"name": "x"})
    assert response.status_code == 403
    assert "You can't do that here" in response.content.decode()


def test_other_organisations_ids_are_404(browser, owner, outsider, other_org, record):
    key, _ = mint_api_key(other_org, name="theirs", created_by=outsider)
    membership = Membership.objects.get(user=outsider)
    invitation = InvitationFactory(organization=other_org)
    theirs = record(other_org)
    client = browser(owner)
    gets = [
        f"/dashboard/requests/{theirs.pk}/",
        f"/dashboard/keys/{key.pk}/revoke/",
        f"/dashboard/team/members/{membership.pk}/remove/",
        "/dashboard/requests/not-a-number/",
    ]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "belongs to another organization" in response.content.decode()
    posts = [
        f"/dashboard/keys/{key.pk}/revoke/",
        f"/dashboard/team/members/{membership.pk}/role/",
        f"/dashboard/team/members/{membership.pk}/remove/",
        f"/dashboard/team/invitations/{invitation.pk}/cancel/",
    ]
    for path in posts:
        assert client.post(path, {"role": "viewer"}).status_code == 404, path
    key.refresh_from_db()
    assert not key.is_revoked
    assert Membership.objects.filter(pk=membership.pk, role="owner").exists()
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_another_organisations_key_is_not_a_filter_choice(browser, owner, outsider, other_org):
    key, _ = mint_api_key(other_org, name="theirs", created_by=outsider)
    for path in ("/dashboard/analytics/", "/dashboard/requests/"):
        response = browser(owner).get(path, {"key": key.pk})
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()


def test_the_switcher_lists_only_the_users_organisations(browser, owner, other_org, outsider):
    Membership.objects.create(organization=other_org, user=owner, role="viewer")
    html = browser(owner).get("/dashboard/").content.decode()
    assert 'value="globex"' in html and 'value="acme"' in html
    response = browser(owner).post(
        "/organizations/switch/", {"organization": "globex", "next": "/dashboard/keys/"}
    )
    assert response.url == "/dashboard/keys/"
    owner.refresh_from_db()
    assert owner.current_organization == other_org
    assert (
        browser(owner).post("/organizations/switch/", {"organization": "nope"}).status_code == 404
    )


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
)
def test_sign_in_pages_use_the_layout(client, path):
    html = client.get(path).content.decode()
    assert '<main id="main" tabindex="-1" class="auth">' in html
    assert "/static/css/app.css" in html and "<label" in html


def test_a_failing_page_is_a_friendly_500_not_a_stack_trace(browser, owner, monkeypatch):
    from analytics import dashboard_queries

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(dashboard_queries, "has_traffic", broken)
    client = browser(owner)
    client.raise_request_exception = False
    response = client.get("/dashboard/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "database on fire" not in html


@pytest.mark.parametrize("path", ["/accounts/email/", "/accounts/password/change/"])
def test_account_pages_use_the_layout(browser, owner, path):
    html = browser(owner).get(path).content.decode()
    assert '<main id="main" tabindex="-1" class="auth">' in html
    assert '<nav class="tabs" aria-label="Dashboard">' in html
