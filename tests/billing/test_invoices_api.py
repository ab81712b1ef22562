from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.accounts import get_billing_account
from billing.invoices import sync_invoices

pytestmark = pytest.mark.django_db
JAN = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
FEB = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
MAR = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


@pytest.fixture
def acme_invoices(org, customer, fake_stripe):
    fake_stripe.add_invoice(
        customer, 2900, id="in_jan", created=FEB, period_start=JAN, period_end=FEB
    )
    fake_stripe.add_invoice(
        customer, 3137, id="in_feb", created=MAR, period_start=FEB, period_end=MAR
    )
    sync_invoices(org)


@pytest.fixture
def globex_invoice(other_org, fake_stripe):
    account = get_billing_account(other_org)
    account.stripe_customer_id = "cus_globex"
    account.save()
    fake_stripe.add_invoice("cus_globex", 99900, id="in_globex", created=MAR)
    sync_invoices(other_org)


def test_members_read_their_invoices_newest_first_with_exact_amounts(
    viewer, client_for, acme_invoices
):
    response = client_for(viewer).get("/api/billing/invoices")
    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body] == ["in_feb", "in_jan"]
    feb = body[0]
    assert feb["amount"] == feb["amount_paid"] == "31.37"
    assert feb["currency"] == "usd"
    assert feb["status"] == "paid"
    assert feb["period_start"].startswith("2026-02-01T00:00:00")
    assert feb["period_end"].startswith("2026-03-01T00:00:00")
    assert feb["pdf_url"] == "https://pay.stripe.test/invoice/in_feb/pdf"


def test_api_keys_of_the_organisation_may_read_invoices(api_key, api_client, acme_invoices):
    _, secret = api_key
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.get("/api/billing/invoices")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == ["in_feb", "in_jan"]


def test_another_organisations_invoices_never_appear(
    owner, outsider, client_for, acme_invoices, globex_invoice
):
    assert [r["id"] for r in client_for(outsider).get("/api/billing/invoices").json()] == [
        "in_globex"
    ]
    assert "in_globex" not in {
        r["id"] for r in client_for(owner).get("/api/billing/invoices").json()
    }


def test_the_organisation_header_cannot_reach_another_organisation(
    owner, client_for, acme_invoices, globex_invoice
):
    response = client_for(owner).get("/api/billing/invoices", HTTP_X_ORGANIZATION="globex")
    assert response.status_code == 404


def test_no_invoices_is_an_empty_list(owner, client_for, plans):
    assert client_for(owner).get("/api/billing/invoices").json() == []


def test_invoices_need_a_login(api_client, plans):
    assert api_client.get("/api/billing/invoices").status_code == 401


def test_listing_invoices_costs_a_fixed_number_of_queries(
    owner, client_for, acme_invoices, fake_stripe, django_assert_max_num_queries
):
    for n in range(10):
        fake_stripe.add_invoice("cus_acme", 100 + n, created=MAR + n)
    sync_invoices(owner.current_organization)
    client = client_for(owner)
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/billing/invoices").json()) == 12
