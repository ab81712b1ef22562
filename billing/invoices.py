"""Invoices: copied from Stripe into billing.Invoice, listed by the invoices API and billing page.

Stripe stays the source of truth; `sync_invoices` re-reads the customer's invoices and upserts
them by Stripe id, so running it twice leaves the same rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing import stripe_api
from billing.accounts import find_billing_account
from billing.models import Invoice
from organizations.models import Organization

logger = logging.getLogger(__name__)

# Stripe amounts are integers in the currency's smallest unit; these currencies have no minor
# unit or three decimals (Stripe's list); every other one has two.
ZERO_DECIMAL_CURRENCIES = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL_CURRENCIES = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# Drafts can still change or be deleted; customers see an invoice once it is finalised.
HIDDEN_STATUSES = frozenset({"draft"})


def sync_invoices(org: Organization) -> int:
    """Copy the organisation's Stripe invoices into billing.Invoice; returns how many."""
    account = find_billing_account(org)
    if account is None or not account.stripe_customer_id:
        return 0
    customer_id = account.stripe_customer_id
    stored = 0
    for data in stripe_api.list_invoices(customer_id):
        if _id_of(data.get("customer")) != customer_id:
            logger.warning("Stripe listed an invoice of another customer; ignored")
            continue
        if store_invoice(org, data) is not None:
            stored += 1
    return stored


def store_invoice(org: Organization, data: dict) -> Invoice | None:
    """Insert or update one invoice from Stripe's Invoice object; drafts are not stored."""
    if data.get("status") in HIDDEN_STATUSES or not data.get("status"):
        return None
    currency = (data.get("currency") or "").lower()
    fields = {
        "organization": org,
        "number": data.get("number") or "",
        "status": data["status"],
        "amount_due": amount_from_minor_units(data.get("amount_due") or 0, currency),
        "amount_paid": amount_from_minor_units(data.get("amount_paid") or 0, currency),
        "currency": currency,
        "period_start": _time(data.get("period_start")),
        "period_end": _time(data.get("period_end")),
        "hosted_url": data.get("hosted_invoice_url") or "",
        "pdf_url": data.get("invoice_pdf") or "",
        "created": _time(data.get("created")) or timezone.now(),
        "synced_at": timezone.now(),
    }
    with transaction.atomic():
        invoice, _ = Invoice.objects.update_or_create(stripe_id=data["id"], defaults=fields)
    return invoice


def list_invoices_for_org(org: Organization, limit: int = 100) -> QuerySet[Invoice]:
    """The organisation's invoices, newest first."""
    return Invoice.objects.for_org(org).order_by("-created", "-pk")[:limit]


def describe_invoice(invoice: Invoice) -> dict:
    """One invoice as the API and the billing page show it; amounts as exact decimal strings."""
    return {
        "id": invoice.stripe_id,
        "number": invoice.number,
        "status": invoice.status,
        "amount": format_amount(invoice.amount_due, invoice.currency),
        "amount_paid": format_amount(invoice.amount_paid, invoice.currency),
        "currency": invoice.currency,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "created": invoice.created,
        "pdf_url": invoice.pdf_url,
        "hosted_url": invoice.hosted_url,
    }


def minor_unit_places(currency: str) -> int:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if currency in THREE_DECIMAL_CURRENCIES else 2


def amount_from_minor_units(value: int, currency: str) -> Decimal:
    """Stripe's integer amount as an exact Decimal in the major unit (2900 usd -> 29.00)."""
    return Decimal(int(value)).scaleb(-minor_unit_places(currency))


def format_amount(value: Decimal, currency: str) -> str:
    """The amount with exactly the currency's decimals: "29.00" usd, "1500" jpy."""
    return str(value.quantize(Decimal(1).scaleb(-minor_unit_places(currency))))


def _time(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _id_of(value) -> str | None:
    return value["id"] if isinstance(value, dict) else value
