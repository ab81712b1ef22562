"""Everything the billing page shows for one organisation, gathered in one place."""

from __future__ import annotations

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
    return {
        "label": label,
        "used": usage[key],
        "limit": usage["limits"][key],
        "percent": usage["percent"][key],
        "projected": usage["projected"][key],
    }
