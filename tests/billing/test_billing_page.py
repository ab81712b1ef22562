from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from analytics.models import UsageRecord
from billing.accounts import get_billing_account
from billing.invoices import sync_invoices
from billing.models import SubscriptionStatus
from tests.clock import next_month

pytestmark = pytest.mark.django_db
NOW = next_month(16)


@pytest.fixture
def browser(client):
    """browser(user) -> Django's test client signed in as that user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def acme_invoice(org, customer, fake_stripe):
    fake_stripe.add_invoice(customer, 2999, id="in_acme", created=int(NOW.timestamp()))
    sync_invoices(org)


@pytest.fixture
def globex_invoice(other_org, fake_stripe):
    account = get_billing_account(other_org)
    account.stripe_customer_id = "cus_globex"
    account.save()
    fake_stripe.add_invoice("cus_globex", 99900, id="in_globex", created=int(NOW.timestamp()))
    sync_invoices(other_org)


@time_machine.travel(NOW, tick=False)
def test_the_page_shows_plan_usage_against_limits_plans_and_invoices(
    org, owner, browser, acme_invoice
):
    for n in range(250):
        UsageRecord.objects.create(
            organization=org,
            request_id=f"r-{n}",
            created_at=NOW - timedelta(hours=1),
            endpoint="chat.completions",
            status=200,
            input_tokens=40,
            output_tokens=10,
        )
    page = browser(owner).get("/billing/")
    assert page.status_code == 200
    assert page.templates[0].name == "billing/billing.html"
    html = page.content.decode()
    assert "Acme: Free plan" in html
    assert "25.0%" in html  # 250 of the Free plan's 1,000 requests
    assert "<td>12500</td>" in html  # tokens used
    assert "25.0%" in html and "<td>1000</td>" in html
    for plan in ("Starter", "Professional", "Enterprise"):
        assert plan in html
    assert "29.99 USD" in html
    assert 'href="https://pay.stripe.test/invoice/in_acme/pdf"' in html


def test_owners_see_subscribe_and_manage_billing(owner, browser, acme_invoice):
    html = browser(owner).get("/billing/").content.decode()
    assert html.count('class="subscribe"') == 3  # every paid plan
    assert 'id="manage-billing"' in html


@pytest.mark.parametrize("who", ["admin_user", "member", "viewer"])
def test_others_see_no_owner_controls_and_are_refused(who, request, browser, acme_invoice):
    client = browser(request.getfixturevalue(who))
    html = client.get("/billing/").content.decode()
    assert 'class="subscribe"' not in html
    assert 'id="manage-billing"' not in html
    assert "29.99 USD" in html  # invoices are readable by every member
    fake_stripe = request.getfixturevalue("fake_stripe")
    fake_stripe.requests.clear()
    assert client.post("/billing/subscribe/", {"plan": "starter"}).status_code == 403
    assert client.post("/billing/portal/").status_code == 403
    assert fake_stripe.requests == []


def test_subscribing_redirects_the_owner_to_checkout(org, owner, browser, fake_stripe):
    response = browser(owner).post("/billing/subscribe/", {"plan": "starter"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.test/c/pay/cs_")
    [session] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert session["line_items[0][price]"] == "price_starter"
    assert session["client_reference_id"] == str(org.pk)


def test_manage_billing_redirects_the_owner_to_the_portal(owner, browser, customer, fake_stripe):
    response = browser(owner).post("/billing/portal/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://billing.stripe.test/p/session/bps_")
    [session] = fake_stripe.calls("POST", "/v1/billing_portal/sessions")
    assert session["customer"] == customer


@pytest.mark.parametrize("plan", ["free", "platinum", ""])
def test_an_unknown_plan_is_refused_naming_the_field(plan, owner, browser, fake_stripe):
    response = browser(owner).post("/billing/subscribe/", {"plan": plan})
    assert response.status_code == 400
    assert "plan: no such plan" in response.content.decode()
    assert fake_stripe.requests == []


def test_a_stripe_outage_sends_the_owner_back_with_a_message(owner, browser, fake_stripe):
    fake_stripe.failing_paths.add("/v1/checkout/sessions")
    response = browser(owner).post("/billing/subscribe/", {"plan": "starter"}, follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    assert "Stripe did not answer" in response.content.decode()


def test_a_paying_organisation_changes_plan_in_the_portal(org, owner, browser, customer):
    account = get_billing_account(org)
    account.status = SubscriptionStatus.ACTIVE
    account.save()
    html = browser(owner).get("/billing/").content.decode()
    assert 'class="subscribe"' not in html
    assert 'id="manage-billing"' in html


def test_outsiders_see_only_their_own_organisations_invoices(
    outsider, browser, acme_invoice, globex_invoice
):
    html = browser(outsider).get("/billing/").content.decode()
    assert "Globex: Free plan" in html
    assert "999.00 USD" in html
    assert "in_acme/pdf" not in html
    assert "29.99 USD" not in html


def test_without_stripe_the_page_says_so_and_the_free_plan_applies(owner, browser, plans):
    html = browser(owner).get("/billing/").content.decode()
    assert 'id="stripe-not-configured"' in html
    assert "Billing is not configured" in html
    assert "Acme: Free plan" in html
    assert 'class="subscribe"' not in html
    assert 'id="manage-billing"' not in html


def test_the_page_needs_a_login(client, plans):
    response = client.get("/billing/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_home_page_links_to_billing(owner, browser, plans):
    assert 'href="/billing/"' in browser(owner).get("/").content.decode()
