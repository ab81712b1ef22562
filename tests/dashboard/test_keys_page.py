from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from organizations.api_keys import find_api_key, hash_secret, mint_api_key
from organizations.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_with_its_limits(browser, owner, org):
    client = browser(owner)
    expires = (timezone.now() + timedelta(days=30)).date()
    response = client.post(
        "/dashboard/keys/",
        {
            "name": "production",
            "expires_on": expires.isoformat(),
            "rate_limit_per_minute": "60",
            "rate_limit_per_day": "5000",
            "tokens_per_minute": "",
            "monthly_budget_usd": "25.50",
        },
    )
    assert response.status_code == 201
    secret = re.search(r'id="new-key-secret" value="([^"]+)"', response.content.decode())[1]
    key = ApiKey.objects.get(name="production")
    assert key.organization == org and key.created_by == owner
    assert key.secret_hash == hash_secret(secret.partition("_")[2])
    assert find_api_key(secret) == key
    assert key.rate_limit_per_minute == 60 and key.tokens_per_minute is None
    assert key.rate_limit_per_day == 5000 and key.rate_limit_per_hour is None
    assert str(key.monthly_budget_usd) == "25.50"
    assert key.expires_at.date() == expires
    listing = client.get("/dashboard/keys/").content.decode()
    assert "production" in listing and "60 req/min" in listing and "5000 req/day" in listing
    assert "$25.50/month" in listing
    assert secret not in listing


def test_form_errors_appear_next_to_their_fields(browser, owner):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = browser(owner).post(
        "/dashboard/keys/", {"name": "", "expires_on": yesterday, "rate_limit_per_minute": "0"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_name_error"><li>This field is required', html)
    assert re.search(r'id="id_expires_on_error"><li>Choose a date after today', html)
    assert re.search(r'id="id_rate_limit_per_minute_error"><li>Ensure this value is greater', html)
    assert 'aria-invalid="true"' in html
    assert '<details class="limits" open>' in html  # the limit with an error is not hidden
    assert not ApiKey.objects.exists()


def test_revoking_asks_first_then_the_key_stops_working(browser, owner, org):
    key, secret = mint_api_key(org, name="old", created_by=owner)
    client = browser(owner)
    confirm = client.get(f"/dashboard/keys/{key.pk}/revoke/")
    assert "cannot be undone" in confirm.content.decode()
    key.refresh_from_db()
    assert not key.is_revoked
    response = client.post(f"/dashboard/keys/{key.pk}/revoke/")
    assert response.url == "/dashboard/keys/"
    assert find_api_key(secret) is None
    assert "revoked" in client.get("/dashboard/keys/").content.decode()


def test_members_see_and_revoke_only_their_own_keys(browser, member, owner, org):
    mine, _ = mint_api_key(org, name="mine", created_by=member)
    theirs, _ = mint_api_key(org, name="owners", created_by=owner)
    client = browser(member)
    html = client.get("/dashboard/keys/").content.decode()
    assert "mine" in html and "owners" not in html
    assert client.post(f"/dashboard/keys/{theirs.pk}/revoke/").status_code == 403
    assert client.post(f"/dashboard/keys/{mine.pk}/revoke/").status_code == 302
    theirs.refresh_from_db()
    assert not theirs.is_revoked


def test_the_key_list_costs_the_same_queries_for_many_keys(browser, owner, org, constant_queries):
    mint_api_key(org, name="first", created_by=owner)

    def more_keys():
        for n in range(15):
            mint_api_key(org, name=f"key {n}", created_by=owner)

    assert constant_queries(browser(owner), "/dashboard/keys/", more_keys) <= 8
