from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import stripe_api
from billing.invoices import amount_from_minor_units, format_amount, sync_invoices
from billing.models import Invoice
from billing.tasks import sync_all_invoices, sync_org_invoices

pytestmark = pytest.mark.django_db
MARCH = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
APRIL = int(datetime(2026, 4, 1, tzinfo=UTC).timestamp())


def test_sync_stores_each_invoice_with_exact_amounts(org, customer, fake_stripe):
    fake_stripe.add_invoice(
        customer, 2999, id="in_march", created=APRIL, period_start=MARCH, period_end=APRIL
    )
    fake_stripe.add_invoice(customer, 1234567, status="open", id="in_big", created=APRIL + 60)
    assert sync_invoices(org) == 2
    march = Invoice.objects.get(stripe_id="in_march")
    assert march.organization == org
    assert march.status == "paid"
    assert march.amount_due == march.amount_paid == Decimal("29.99")
    assert (march.period_start, march.period_end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert march.pdf_url == "https://pay.stripe.test/invoice/in_march/pdf"
    assert march.hosted_url == "https://invoice.stripe.test/i/in_march"
    assert march.number.startswith("ACME-")
    big = Invoice.objects.get(stripe_id="in_big")
    assert (big.status, big.amount_due, big.amount_paid) == ("open", Decimal("12345.67"), 0)


def test_sync_follows_stripes_pages(org, customer, fake_stripe):
    for n in range(7):
        fake_stripe.add_invoice(customer, 100 + n, created=APRIL + n)
    assert len(stripe_api.list_invoices(customer, page_size=3)) == 7
    assert len(fake_stripe.calls("GET", "/v1/invoices")) == 3


def test_sync_picks_up_status_changes_in_place(org, customer, fake_stripe):
    invoice = fake_stripe.add_invoice(customer, 2900, status="open", id="in_1")
    sync_invoices(org)
    invoice.update(status="paid", amount_paid=2900)
    sync_invoices(org)
    [row] = Invoice.objects.all()
    assert (row.status, row.amount_paid) == ("paid", Decimal("29.00"))


def test_drafts_are_not_stored(org, customer, fake_stripe):
    fake_stripe.add_invoice(customer, 2900, status="draft")
    assert sync_invoices(org) == 0
    assert not Invoice.objects.exists()


def test_invoices_of_other_customers_stay_out(org, other_org, customer, fake_stripe):
    fake_stripe.add_invoice("cus_globex", 5000)
    assert sync_invoices(org) == 0
    assert sync_invoices(other_org) == 0  # no Stripe customer yet
    assert not Invoice.objects.exists()


def test_the_sync_task_is_safe_to_run_twice(org, customer, fake_stripe):
    fake_stripe.add_invoice(customer, 2900, id="in_a", created=MARCH)
    fake_stripe.add_invoice(customer, 9900, id="in_b", created=APRIL)
    assert sync_org_invoices.apply(args=[org.pk]).get() == 2
    first = list(Invoice.objects.order_by("stripe_id").values_list("pk", "stripe_id", "amount_due"))
    assert sync_org_invoices.apply(args=[org.pk]).get() == 2
    again = list(Invoice.objects.order_by("stripe_id").values_list("pk", "stripe_id", "amount_due"))
    assert (
        again
        == first
        == [
            (first[0][0], "in_a", Decimal("29.00")),
            (first[1][0], "in_b", Decimal("99.00")),
        ]
    )


def test_the_sweep_queues_one_sync_per_stripe_customer(
    org, other_org, customer, fake_stripe, monkeypatch
):
    queued = []
    monkeypatch.setattr(sync_org_invoices, "delay", queued.append)
    assert sync_all_invoices() == 1
    assert queued == [org.pk]


def test_a_stripe_outage_fails_the_task_without_touching_rows(org, customer, fake_stripe):
    fake_stripe.add_invoice(customer, 2900)
    sync_invoices(org)
    fake_stripe.failing_paths.add("/v1/invoices")
    with pytest.raises(stripe_api.StripeUnavailable):
        sync_invoices(org)
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "currency", "amount", "shown"),
    [
        (2999, "usd", Decimal("29.99"), "29.99"),
        (2900, "eur", Decimal("29"), "29.00"),
        (1500, "jpy", Decimal("1500"), "1500"),
        (12345, "kwd", Decimal("12.345"), "12.345"),
        (1, "usd", Decimal("0.01"), "0.01"),
    ],
)
def test_amounts_convert_from_the_smallest_unit_exactly(value, currency, amount, shown):
    converted = amount_from_minor_units(value, currency)
    assert converted == amount
    assert format_amount(converted, currency) == shown
