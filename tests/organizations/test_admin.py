from __future__ import annotations

import pytest

from organizations.models import Organization

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/admin/",
    "/admin/organizations/organization/",
    "/admin/organizations/membership/",
    "/admin/organizations/apikey/",
    "/admin/organizations/invitation/",
    "/admin/accounts/user/",
    "/admin/analytics/usagerecord/",
    "/admin/organizations/organization/?plan=free&is_suspended__exact=0&q=acme",
]


@pytest.fixture
def staff(db):
    from accounts.models import User

    return User.objects.create_superuser("staff@gateway.test", "pw")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_load_for_staff(client, staff, org, owner, api_key, url):
    client.force_login(staff)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_are_refused_to_non_staff(client, owner, url):
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_api_key_admin_never_shows_the_secret_hash(client, staff, api_key):
    row, _ = api_key
    client.force_login(staff)
    page = client.get(f"/admin/organizations/apikey/{row.pk}/change/").content.decode()
    assert row.secret_hash not in page
    assert row.prefix in client.get("/admin/organizations/apikey/").content.decode()


def test_staff_suspends_an_organization(client, staff, org):
    client.force_login(staff)
    client.post(
        "/admin/organizations/organization/",
        {"action": "suspend", "_selected_action": [org.pk]},
    )
    assert Organization.objects.get(pk=org.pk).is_suspended
