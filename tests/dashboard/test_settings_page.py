from __future__ import annotations

import pytest

from analytics.models import AlertSettings

pytestmark = pytest.mark.django_db


def test_admins_change_the_organisation_settings(browser, admin_user, org):
    response = browser(admin_user).post(
        "/dashboard/settings/",
        {
            "name": "Acme Labs",
            "default_route_alias": "gpt-4o-mini",
            "cache_enabled": "",
            "cache_ttl_seconds": "600",
            "prompt_logging": "on",
        },
    )
    assert response.url == "/dashboard/settings/"
    org.refresh_from_db()
    assert org.name == "Acme Labs" and org.default_route_alias == "gpt-4o-mini"
    assert not org.cache_enabled and org.cache_ttl_seconds == 600 and org.prompt_logging


def test_settings_errors_appear_next_to_their_fields(browser, owner, org):
    response = browser(owner).post(
        "/dashboard/settings/",
        {"name": "", "default_route_alias": "no-such-model", "cache_ttl_seconds": "0"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"><li>This field is required' in html
    assert 'id="id_default_route_alias_error"><li>&#x27;no-such-model&#x27; is not a model' in html
    assert 'id="id_cache_ttl_seconds_error"><li>Choose 1 to' in html
    org.refresh_from_db()
    assert org.name == "Acme" and org.default_route_alias == ""


def test_alert_recipients_are_saved_and_validated(browser, admin_user, org):
    client = browser(admin_user)
    bad = client.post("/dashboard/settings/alerts/", {"emails": "ops@acme.test, not-an-address"})
    assert bad.status_code == 400
    assert "&#x27;not-an-address&#x27; is not an e-mail address." in bad.content.decode()
    assert not AlertSettings.objects.exists()
    good = client.post(
        "/dashboard/settings/alerts/",
        {"emails": "ops@acme.test, oncall@acme.test", "webhook_url": "https://hooks.acme.test/a"},
        HTTP_HX_REQUEST="true",
    )
    assert good.status_code == 200
    assert "<html" not in good.content.decode()  # the htmx partial only
    saved = AlertSettings.objects.get(organization=org)
    assert saved.email_list == ["ops@acme.test", "oncall@acme.test"]
    assert saved.webhook_url == "https://hooks.acme.test/a"
