"""Every call this project makes to Stripe's API, through the `stripe` SDK.

One seam: the SDK's global HTTP client (`stripe.default_http_client`), which tests replace with a
local fake. `STRIPE_API_HOST` (read by dj-stripe) points the SDK at another server.
Stripe errors become StripeUnavailable so a Stripe outage degrades billing pages, nothing else.
"""

from __future__ import annotations

import logging
from datetime import datetime

import stripe
from django.conf import settings
from djstripe.settings import djstripe_settings

from billing.accounts import get_billing_account
from billing.models import Plan
from organizations.models import Organization

logger = logging.getLogger(__name__)


class StripeUnavailable(Exception):
    """Stripe is not configured, or did not answer."""


def is_stripe_configured() -> bool:
    return bool(djstripe_settings.STRIPE_SECRET_KEY)


def get_api_key() -> str:
    if not is_stripe_configured():
        raise StripeUnavailable(
            "Stripe is not configured: billing is off and the Free plan applies."
        )
    return djstripe_settings.STRIPE_SECRET_KEY


def _call(function, /, **params):
    try:
        return function(api_key=get_api_key(), **params)
    except stripe.StripeError as error:
        logger.warning("Stripe call failed: %s", type(error).__name__)
        raise StripeUnavailable("Stripe did not answer; try again shortly.") from error


def ensure_customer(org: Organization, email: str) -> str:
    """The organisation's Stripe customer id, creating the customer once."""
    account = get_billing_account(org)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = _call(
        stripe.Customer.create,
        name=org.name,
        email=email,
        metadata={"organization_id": str(org.pk), "organization_slug": org.slug},
        idempotency_key=f"gateway-customer-{org.pk}",
    )
    account.stripe_customer_id = customer["id"]
    account.save(update_fields=["stripe_customer_id"])
    return customer["id"]


def create_checkout_session(org: Organization, plan: Plan, email: str) -> str:
    """A Stripe Checkout URL that subscribes the organisation to the plan."""
    customer_id = ensure_customer(org, email)
    line_items = [{"price": plan.stripe_price_id, "quantity": 1}]
    if plan.stripe_overage_price_id:
        line_items.append({"price": plan.stripe_overage_price_id})  # metered: no quantity
    metadata = {"organization_id": str(org.pk), "plan": plan.slug}
    return_url = settings.GATEWAY_BILLING_RETURN_URL
    session = _call(
        stripe.checkout.Session.create,
        mode="subscription",
        customer=customer_id,
        client_reference_id=str(org.pk),
        line_items=line_items,
        metadata=metadata,
        subscription_data={"metadata": metadata},
        success_url=f"{return_url}?checkout=success",
        cancel_url=f"{return_url}?checkout=cancel",
    )
    return session["url"]


def create_portal_session(org: Organization, email: str) -> str:
    """A Customer Portal URL: card, plan changes, cancellation."""
    customer_id = ensure_customer(org, email)
    session = _call(
        stripe.billing_portal.Session.create,
        customer=customer_id,
        return_url=settings.GATEWAY_BILLING_RETURN_URL,
    )
    return session["url"]


def retrieve_subscription(subscription_id: str) -> dict:
    """The subscription as Stripe has it now (the truth, whatever order events arrive in)."""
    return _call(stripe.Subscription.retrieve, id=subscription_id).to_dict()


def list_invoices(customer_id: str, page_size: int = 100, max_pages: int = 50) -> list[dict]:
    """The customer's invoices, newest first, following Stripe's cursor pages."""
    invoices: list[dict] = []
    params: dict = {"customer": customer_id, "limit": page_size}
    for _ in range(max_pages):
        page = _call(stripe.Invoice.list, **params)
        invoices.extend(invoice.to_dict() for invoice in page.data)
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1]["id"]
    return invoices


def send_meter_event(customer_id: str, value: int, identifier: str, timestamp: datetime) -> None:
    """One Billing Meter event; Stripe ignores a repeated identifier."""
    _call(
        stripe.billing.MeterEvent.create,
        event_name=settings.GATEWAY_STRIPE_METER_EVENT,
        payload={"stripe_customer_id": customer_id, "value": str(value)},
        identifier=identifier,
        timestamp=int(timestamp.timestamp()),
    )
