"""Stripe webhooks: verified and stored by dj-stripe, applied once per event id.

The request is kept as a dj-stripe WebhookEventTrigger (headers, body, error and traceback) and
checked with dj-stripe's signature validation against the WebhookEndpoint's secret. A verified
event is applied in one transaction together with its ProcessedEvent row, so a redelivery is a
no-op and a failure rolls back completely, answers 500 (Stripe redelivers) and stays on record for
`retry_failed_webhooks`.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from traceback import format_exc

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip

from analytics import alerts
from billing import stripe_api
from billing.invoices import amount_from_minor_units, format_amount
from billing.models import BillingAccount, ProcessedEvent
from billing.subscriptions import apply_subscription, find_account_for_subscription

logger = logging.getLogger(__name__)

SETTINGS_ENDPOINT_ID = "we_gateway_settings"
SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}
INVOICE_EVENTS = {"invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded"}
# Stripe's own libraries refuse signatures older than five minutes; we refuse newer ones too.
TIMESTAMP_TOLERANCE_SECONDS = 300


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def get_webhook_endpoint() -> WebhookEndpoint | None:
    """The endpoint whose secret signs our events: STRIPE_WEBHOOK_SECRET, else a synced one."""
    livemode = bool(settings.STRIPE_LIVE_MODE)
    secret = settings.STRIPE_WEBHOOK_SECRET
    if secret:
        endpoint = WebhookEndpoint.objects.filter(id=SETTINGS_ENDPOINT_ID).first()
        if endpoint is None or endpoint.secret != secret or endpoint.livemode != livemode:
            endpoint, _ = WebhookEndpoint.objects.update_or_create(
                id=SETTINGS_ENDPOINT_ID,
                defaults={
                    "secret": secret,
                    "livemode": livemode,
                    "enabled_events": ["*"],
                    "status": WebhookEndpointStatus.enabled,
                    "url": "https://localhost/api/billing/webhook",
                },
            )
        return endpoint
    return (
        WebhookEndpoint.objects.filter(livemode=livemode, status=WebhookEndpointStatus.enabled)
        .exclude(secret="")
        .order_by("-djstripe_created")
        .first()
    )


def receive_webhook(request) -> WebhookEventTrigger:
    """Store, verify and apply one delivery. Raises WebhookRejected (400/503) or the failure."""
    if "stripe-signature" not in request.headers:
        raise WebhookRejected(400, "Missing Stripe-Signature header.")
    endpoint = get_webhook_endpoint()
    if endpoint is None:
        raise WebhookRejected(503, "Stripe webhooks are not configured.")
    check_timestamp(request.headers["stripe-signature"])
    trigger = WebhookEventTrigger.objects.create(
        headers=dict(request.headers),
        body=request.body.decode(request.encoding or "utf-8", errors="replace"),
        remote_ip=get_remote_ip(request),
        webhook_endpoint=endpoint,
    )
    trigger.valid = trigger.validate(api_key="", secret=endpoint.secret)
    trigger.save(update_fields=["valid", "updated"])
    if not trigger.valid:
        raise WebhookRejected(400, "Invalid Stripe signature.")
    process_trigger(trigger)
    return trigger


def check_timestamp(signature_header: str, now: float | None = None) -> None:
    """The signed timestamp (t=...) must be within five minutes of now, in either direction:
    a replay from the past or a delivery dated in the future is refused."""
    stamps = [
        value
        for name, _, value in (part.partition("=") for part in signature_header.split(","))
        if name.strip() == "t"
    ]
    try:
        signed_at = int(stamps[0])
    except (IndexError, ValueError):
        raise WebhookRejected(400, "The Stripe-Signature header has no timestamp.") from None
    skew = (time.time() if now is None else now) - signed_at
    if abs(skew) > TIMESTAMP_TOLERANCE_SECONDS:
        raise WebhookRejected(
            400, f"The signature timestamp is {abs(skew):.0f}s away from now (limit 300s)."
        )


def process_trigger(trigger: WebhookEventTrigger) -> None:
    """Apply a verified delivery; on failure keep the error on the trigger and re-raise."""
    try:
        with transaction.atomic():
            apply_event(trigger.json_body)
    except Exception as error:
        trigger.exception = str(error)[:128]
        trigger.traceback = format_exc()
        trigger.save(update_fields=["exception", "traceback", "updated"])
        raise
    trigger.processed = True
    trigger.exception = trigger.traceback = ""
    trigger.save(update_fields=["processed", "exception", "traceback", "updated"])


def apply_event(event: dict) -> bool:
    """Apply a Stripe event once; False when this event id was already applied."""
    event_id, event_type = event["id"], event.get("type", "")
    if ProcessedEvent.objects.filter(stripe_event_id=event_id).exists():
        return False
    try:
        # Claim the event first: a concurrent delivery of the same event waits on this row's
        # unique key until we commit, then finds it taken and answers as a redelivery.
        with transaction.atomic():
            ProcessedEvent.objects.create(stripe_event_id=event_id, type=event_type)
    except IntegrityError:
        return False
    obj = event.get("data", {}).get("object", {})
    if event_type == "checkout.session.completed":
        link_checkout_session(obj)
    elif event_type in SUBSCRIPTION_EVENTS:
        sync_subscription(obj["id"])
    elif event_type in INVOICE_EVENTS:
        subscription_id = subscription_of_invoice(obj)
        if subscription_id:
            sync_subscription(subscription_id)
        report_payment_outcome(event_type, obj)
    return True


def link_checkout_session(session: dict) -> None:
    """Checkout finished: remember the customer and subscription, then apply its state."""
    org_id = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "organization_id"
    )
    if not org_id or not session.get("subscription"):
        return
    account = BillingAccount.objects.select_for_update().filter(organization_id=int(org_id)).first()
    if account is None:
        logger.warning("checkout completed for an organisation without a billing account")
        return
    account.stripe_customer_id = _id_of(session.get("customer")) or account.stripe_customer_id
    account.stripe_subscription_id = _id_of(session["subscription"])
    account.save(update_fields=["stripe_customer_id", "stripe_subscription_id"])
    sync_subscription(account.stripe_subscription_id)


def sync_subscription(subscription_id: str) -> None:
    data = stripe_api.retrieve_subscription(subscription_id)
    account = find_account_for_subscription(data)
    if account is None:
        logger.warning("subscription event for a customer we do not know; ignored")
        return
    apply_subscription(account, data)


def report_payment_outcome(event_type: str, invoice: dict) -> None:
    """A failed payment opens the organisation's payment alert; a paid invoice resolves it."""
    customer_id = _id_of(invoice.get("customer"))
    account = BillingAccount.objects.filter(stripe_customer_id=customer_id).first()
    if not customer_id or account is None:
        return
    if event_type == "invoice.payment_failed":
        currency = invoice.get("currency") or "usd"
        amount = amount_from_minor_units(invoice.get("amount_due") or 0, currency)
        alerts.report_payment_failed(
            account.organization_id,
            invoice.get("id", ""),
            format_amount(amount, currency),
            currency,
        )
    else:
        alerts.resolve_payment_failed(account.organization_id)


def subscription_of_invoice(invoice: dict) -> str | None:
    if invoice.get("subscription"):
        return _id_of(invoice["subscription"])
    # Newer API versions: invoice.parent.subscription_details.subscription
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id_of(details.get("subscription")) if details.get("subscription") else None


def retry_failed_webhooks(max_age_days: int = 3, limit: int = 100) -> int:
    """Re-apply verified deliveries that failed; returns how many now succeeded."""
    since = timezone.now() - timedelta(days=max_age_days)
    failed = WebhookEventTrigger.objects.filter(valid=True, processed=False, created__gte=since)
    done = 0
    for trigger in failed.order_by("created")[:limit]:
        try:
            process_trigger(trigger)
        except Exception:
            logger.warning("webhook %s still fails", trigger.pk, exc_info=True)
            continue
        done += 1
    return done


def _id_of(value) -> str | None:
    if value is None:
        return None
    return value["id"] if isinstance(value, dict) else value
