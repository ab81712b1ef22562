"""Everything the billing page shows for one organisation, gathered in one place."""

from __future__ import annotations

from decimal import Decimal

from billing import stripe_api
from billing.accounts import PAYING, find_billing_account
from billing.invoices import describe_invoice, list_invoices_for_org
from billing.plans import list_public_plans
from billing.usage import describe_period_usage
from organizations.tenancy import TenantContext


def describe_billing_page(tenant: TenantContext) -> dict:
    """The page's context: plan, this period's usage against it, plans, invoices, and which
    owner-only controls to show (the views refuse them again server-side)."""
    org = tenant.organization
    account = find_billing_account(org)
    is_paying = account is not None and account.status in PAYING
    usage = describe_period_usage(org)
    stripe_configured = stripe_api.is_stripe_configured()
    can_manage = tenant.can("manage_billing") and stripe_configured
    return {
        "organization": org,
        "role": tenant.role,
        "account": account,
        "stripe_configured": stripe_configured,
        "usage": usage,
        "usage_rows": [
            _usage_row("Requests", usage, "requests"),
            _usage_row("Tokens", usage, "tokens"),
        ],
        "plans": list_public_plans(),
        # A paying organisation changes plan in the portal, so it never holds two subscriptions.
        "can_subscribe": can_manage and not is_paying,
        "can_open_portal": can_manage and bool(account and account.stripe_customer_id),
        "invoices": [describe_invoice(invoice) for invoice in list_invoices_for_org(org)],
    }


def _usage_row(label: str, usage: dict, key: str) -> dict:
    percent = usage["percent"][key]
    share = Decimal(percent) if percent is not None else Decimal(0)
    return {
        "label": label,
        "used": usage[key],
        "limit": usage["limits"][key],
        "percent": percent,
        "projected": usage["projected"][key],
        # The meter on the page: its width, and "high" from 80 %, "full" at the limit.
        "bar_width": str(min(share, Decimal(100))),
        "level": "full" if share >= 100 else "high" if share >= 80 else "",
    }
