"""Invoices: pulled from Stripe into dj-stripe's Invoice table, listed on the billing page."""

from __future__ import annotations

import logging
from decimal import Decimal

from djstripe.models import Invoice

from billing import stripe_api
from billing.accounts import find_billing_account
from organizations.models import Organization

logger = logging.getLogger(__name__)


def sync_invoices(org: Organization) -> int:
    """Store the customer's invoices as dj-stripe Invoice rows; returns how many were synced."""
    account = find_billing_account(org)
    if account is None or not account.stripe_customer_id:
        return 0
    count = 0
    for data in stripe_api.list_invoices(account.stripe_customer_id):
        Invoice.sync_from_stripe_data(data, api_key=stripe_api.get_api_key())
        count += 1
    return count


def list_invoices_for_org(org: Organization, limit: int = 24) -> list[dict]:
    account = find_billing_account(org)
    if account is None or not account.stripe_customer_id:
        return []
    invoices = Invoice.objects.filter(customer__id=account.stripe_customer_id).order_by("-created")
    return [describe_invoice(invoice) for invoice in invoices[:limit]]


def describe_invoice(invoice: Invoice) -> dict:
    data = invoice.stripe_data or {}
    return {
        "id": invoice.id,
        "number": data.get("number") or "",
        "status": data.get("status") or "",
        "amount_due": str(Decimal(data.get("amount_due") or 0) / 100),
        "amount_paid": str(Decimal(data.get("amount_paid") or 0) / 100),
        "currency": data.get("currency") or "",
        "period_start": data.get("period_start"),
        "period_end": data.get("period_end"),
        "pdf_url": data.get("invoice_pdf") or "",
        "hosted_url": data.get("hosted_invoice_url") or "",
    }
