"""Tenant isolation over every URL of the schema with another organisation's ids, and the role
matrix over every mutating endpoint (each role, and an API key)."""

from __future__ import annotations

import pytest
from django.urls import resolve
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from organizations.api import TenantView
from organizations.api_keys import mint_api_key
from organizations.models import ApiKey, Invitation, Membership, Organization
from organizations.roles import RANK, Role
from tests.factories import InvitationFactory, MembershipFactory, UserFactory
from tests.security.schema_operations import mutating_operations, schema_operations

pytestmark = pytest.mark.django_db

OPERATIONS = schema_operations()


def snapshot(org: Organization) -> list:
    """Everything of an organisation a request could change."""
    return [
        list(Organization.objects.filter(pk=org.pk).values()),
        list(Membership.objects.filter(organization=org).order_by("pk").values()),
        list(ApiKey.objects.filter(organization=org).order_by("pk").values()),
        list(Invitation.objects.filter(organization=org).order_by("pk").values()),
    ]


@pytest.fixture
def foreign(other_org, outsider):
    """Another organisation's objects, one per kind of id in the URLs."""
    key, _ = mint_api_key(other_org, name="theirs", created_by=outsider)
    return {
        "/api/auth/api-keys/{id}": key.pk,
        "/api/org/members/{id}": Membership.objects.get(user=outsider).pk,
        "/api/org/invitations/{id}": InvitationFactory(organization=other_org).pk,
        "/api/invitations/{token}/accept": InvitationFactory(organization=other_org).token,
    }


BODIES = {"PATCH": {"role": "viewer", "name": "Renamed"}, "POST": {"name": "x", "role": "viewer"}}


def test_every_url_with_an_id_is_covered(foreign):
    templated = {path for _, path in OPERATIONS if "{" in path}
    assert templated == set(foreign), "add the new URL's foreign object to the fixture"


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if "{" in op[1]])
def test_another_organisations_ids_answer_404_and_change_nothing(
    client_for, owner, other_org, foreign, method, path
):
    before = snapshot(other_org)
    value = foreign[path]
    url = path.replace("{id}", str(value)).replace("{token}", str(value))
    response = getattr(client_for(owner), method.lower())(url, BODIES.get(method), format="json")
    if path == "/api/invitations/{token}/accept":
        assert response.status_code in (403, 404)  # the token is the secret; not this e-mail
    else:
        assert response.status_code == 404
    assert snapshot(other_org) == before
    assert other_org.slug not in response.content.decode()


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if "{" not in op[1]])
def test_naming_another_organisation_in_the_header_is_404(
    client_for, owner, other_org, outsider, method, path
):
    before = snapshot(other_org)
    client = client_for(owner)
    client.credentials(
        HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_ORGANIZATION=other_org.slug,
    )
    response = getattr(client, method.lower())(path, BODIES.get(method), format="json")
    if issubclass(resolve(path).func.view_class, TenantView):
        assert response.status_code == 404
    assert response.status_code < 500
    assert snapshot(other_org) == before
    assert outsider.email not in response.content.decode()


# Who may change what: the least role for each mutating endpoint ("public": no login needed;
# "invitee": only the invited person). Requests act on a target that is not the actor's own.
MINIMUM = {
    ("POST", "/api/auth/api-keys"): Role.MEMBER,
    ("DELETE", "/api/auth/api-keys/{id}"): Role.ADMIN,  # someone else's key
    ("POST", "/api/auth/login"): "public",
    ("POST", "/api/auth/logout"): Role.VIEWER,
    ("POST", "/api/auth/refresh"): "public",
    ("POST", "/api/auth/register"): "public",
    ("POST", "/api/auth/switch-organization"): Role.VIEWER,
    ("POST", "/api/billing/portal"): Role.OWNER,
    ("POST", "/api/billing/subscribe"): Role.OWNER,
    ("POST", "/api/invitations/{token}/accept"): "invitee",
    ("PATCH", "/api/org"): Role.ADMIN,
    ("DELETE", "/api/org"): Role.OWNER,
    ("POST", "/api/org/invitations"): Role.ADMIN,
    ("DELETE", "/api/org/invitations/{id}"): Role.ADMIN,
    ("PATCH", "/api/org/members/{id}"): Role.ADMIN,
    ("DELETE", "/api/org/members/{id}"): Role.ADMIN,  # someone else's membership
}


def test_every_mutating_endpoint_is_in_the_role_table():
    assert set(mutating_operations()) == set(MINIMUM)


@pytest.fixture
def targets(org, owner, other_org):
    someone = UserFactory(email="someone@acme.test")
    return {
        "{id}:/api/auth/api-keys/{id}": mint_api_key(org, name="owner's", created_by=owner)[0].pk,
        "{id}:/api/org/members/{id}": MembershipFactory(
            organization=org, user=someone, role=Role.VIEWER
        ).pk,
        "{id}:/api/org/invitations/{id}": InvitationFactory(organization=org).pk,
        "{token}:/api/invitations/{token}/accept": InvitationFactory(
            organization=org, email="invitee@acme.test"
        ).token,
    }


REQUEST_BODIES = {
    ("POST", "/api/auth/api-keys"): {"name": "k"},
    ("POST", "/api/auth/switch-organization"): {"organization": "acme"},
    ("POST", "/api/billing/subscribe"): {"plan": "starter"},
    ("PATCH", "/api/org"): {"name": "Renamed"},
    ("POST", "/api/org/invitations"): {"email": "new@acme.test", "role": "viewer"},
    ("PATCH", "/api/org/members/{id}"): {"role": "member"},
}


def url_for(path, targets):
    for name, value in targets.items():
        placeholder, template = name.split(":", 1)
        if template == path:
            return path.replace(placeholder, str(value))
    return path


def body_for(method, path):
    return REQUEST_BODIES.get((method, path), {})


ROLE_CASES = [
    (method, path, role)
    for (method, path), least in sorted(MINIMUM.items())
    if least not in ("public",)
    for role in Role
]


@pytest.mark.parametrize(("method", "path", "role"), ROLE_CASES)
def test_the_role_matrix(org, owner, targets, method, path, role, settings, plans):
    settings.STRIPE_TEST_SECRET_KEY = ""
    actor = owner if role == Role.OWNER else UserFactory(email=f"{role}@acme.test")
    if role != Role.OWNER:
        MembershipFactory(organization=org, user=actor, role=role)
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {str(RefreshToken.for_user(actor).access_token)}"
    )
    url = url_for(path, targets)
    response = getattr(client, method.lower())(url, body_for(method, path), format="json")
    least = MINIMUM[(method, path)]
    if least == "invitee":
        assert response.status_code == 403  # addressed to someone else, whatever the role
    elif RANK[role] < RANK[least]:
        assert response.status_code == 403, response.content
    else:
        assert response.status_code not in (401, 403), response.content
    assert response.status_code < 500 or response.status_code == 503


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in MINIMUM.items() if v != "public"))
def test_an_api_key_changes_nothing_through_the_management_api(
    org, owner, targets, method, path, plans
):
    _, secret = mint_api_key(org, name="automation", created_by=owner)
    before = snapshot(org)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = url_for(path, targets)
    response = getattr(client, method.lower())(url, body_for(method, path), format="json")
    assert response.status_code in (400, 401, 403), response.content
    assert snapshot(org) == before
