from __future__ import annotations

import pytest

from billing.accounts import get_billing_account

pytestmark = pytest.mark.django_db


def test_owner_gets_a_checkout_url_for_the_plans_price(org, owner, client_for, fake_stripe):
    response = client_for(owner).post("/api/billing/subscribe", {"plan": "starter"}, format="json")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://checkout.stripe.test/c/pay/cs_")
    [customer] = fake_stripe.calls("POST", "/v1/customers")
    assert customer["email"] == "owner@acme.test"
    assert customer["metadata[organization_id]"] == str(org.pk)
    [session] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    account = get_billing_account(org)
    assert session["customer"] == account.stripe_customer_id != ""
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == str(org.pk)
    assert session["line_items[0][price]"] == "price_starter"
    assert session["line_items[0][quantity]"] == "1"
    assert session["line_items[1][price]"] == "price_starter_overage"


def test_the_customer_is_created_once(org, owner, client_for, fake_stripe):
    client = client_for(owner)
    client.post("/api/billing/subscribe", {"plan": "starter"}, format="json")
    client.post("/api/billing/subscribe", {"plan": "professional"}, format="json")
    assert len(fake_stripe.customers) == 1
    sessions = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert [s["line_items[0][price]"] for s in sessions] == ["price_starter", "price_professional"]
    assert sessions[0]["customer"] == sessions[1]["customer"]


@pytest.mark.parametrize("who", ["admin_user", "member", "viewer"])
def test_only_owners_can_subscribe(who, request, client_for, fake_stripe):
    user = request.getfixturevalue(who)
    response = client_for(user).post("/api/billing/subscribe", {"plan": "starter"}, format="json")
    assert response.status_code == 403
    assert fake_stripe.requests == []


@pytest.mark.parametrize("plan", ["free", "platinum", ""])
def test_a_plan_without_a_price_is_refused_naming_the_field(plan, owner, client_for, fake_stripe):
    response = client_for(owner).post("/api/billing/subscribe", {"plan": plan}, format="json")
    assert response.status_code == 400
    assert "plan" in response.json()["fields"]
    assert fake_stripe.requests == []


def test_portal_session_is_for_the_organisations_customer(
    org, owner, client_for, fake_stripe, customer
):
    response = client_for(owner).post("/api/billing/portal")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.test/p/session/bps_")
    [session] = fake_stripe.calls("POST", "/v1/billing_portal/sessions")
    assert session["customer"] == customer
    assert fake_stripe.calls("POST", "/v1/customers") == []


def test_members_cannot_open_the_portal(member, client_for, fake_stripe):
    assert client_for(member).post("/api/billing/portal").status_code == 403


@pytest.mark.parametrize("plan", ["starter", "free", "no-such-plan"])
def test_without_stripe_subscribing_says_so(owner, client_for, plans, plan):
    response = client_for(owner).post("/api/billing/subscribe", {"plan": plan}, format="json")
    assert response.status_code == 503  # what the README promises, whatever the plan
    assert response.json()["code"] == "billing_unavailable"
    assert "not configured" in response.json()["detail"]
    response = client_for(owner).post("/api/billing/portal")
    assert response.status_code == 503
    assert "not configured" in response.json()["detail"]


def test_a_stripe_outage_answers_503_not_500(owner, client_for, fake_stripe):
    fake_stripe.failing_paths.add("/v1/checkout/sessions")
    response = client_for(owner).post("/api/billing/subscribe", {"plan": "starter"}, format="json")
    assert response.status_code == 503
