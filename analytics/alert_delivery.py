"""Who hears about an alert and how: e-mail to the organisation's recipients and to staff, and a
JSON POST to the organisation's webhook and the operator's generic webhook
(GATEWAY_ALERT_WEBHOOK_URL); and the Celery tasks that send them.
"""

from __future__ import annotations

import httpx
from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from analytics import webhook_urls
from analytics.models import Alert, AlertSettings
from organizations.models import Membership
from organizations.roles import Role

WEBHOOK_TIMEOUT_S = 5.0

# The events an alert is delivered for.
FIRED = "fired"
RESOLVED = "resolved"

# The seam tests replace (an httpx.MockTransport); None means the real network.
webhook_transport: httpx.BaseTransport | None = None


def staff_emails() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True)
    return sorted(set(users.values_list("email", flat=True)) | set(settings.GATEWAY_ALERT_EMAILS))


def organization_emails(organization_id: int) -> list[str]:
    """The addresses set in the organisation's alert recipients, else its owners and admins."""
    configured = AlertSettings.objects.filter(organization_id=organization_id).first()
    if configured and configured.email_list:
        return configured.email_list
    members = Membership.objects.filter(
        organization_id=organization_id,
        role__in=[Role.OWNER, Role.ADMIN],
        user__is_active=True,
    )
    return sorted(members.values_list("user__email", flat=True))


def alert_emails(alert: Alert) -> list[str]:
    recipients = set(staff_emails())
    if alert.organization_id:
        recipients |= set(organization_emails(alert.organization_id))
    return sorted(recipients)


def alert_webhooks(alert: Alert) -> list[str]:
    urls = [settings.GATEWAY_ALERT_WEBHOOK_URL] if settings.GATEWAY_ALERT_WEBHOOK_URL else []
    if alert.organization_id:
        configured = AlertSettings.objects.filter(organization_id=alert.organization_id).first()
        if configured and configured.webhook_url:
            urls.append(configured.webhook_url)
    return urls


def alert_payload(alert: Alert, event: str) -> dict:
    return {
        "event": event,  # fired | resolved
        "kind": alert.kind,
        "key": alert.key,
        "organization": alert.organization.slug if alert.organization_id else None,
        "title": alert.title,
        "detail": alert.detail,
        "action": alert.action,
        "since": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "context": alert.context,
    }


def compose_email(alert: Alert, event: str) -> tuple[str, str]:
    since = alert.started_at.strftime("%Y-%m-%d %H:%M UTC")
    if event == RESOLVED:
        ended = alert.resolved_at.strftime("%Y-%m-%d %H:%M UTC") if alert.resolved_at else "now"
        subject = f"[LLM Gateway] Resolved: {alert.title}"
        body = f"Resolved: {alert.title}\n\nStarted {since}, ended {ended}.\n\n{alert.detail}\n"
    else:
        subject = f"[LLM Gateway] {alert.title}"
        body = f"{alert.title}\n\nSince {since}.\n\n{alert.detail}\n\nWhat to do: {alert.action}\n"
    if alert.organization_id:
        body += f"\nOrganisation: {alert.organization.name}\n"
    return subject, body


def send_alert_email(alert: Alert, event: str) -> int:
    recipients = alert_emails(alert)
    if not recipients:
        return 0
    subject, body = compose_email(alert, event)
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)


def post_alert_webhook(url: str, payload: dict) -> None:
    """POST the alert; raises httpx.HTTPError on a network error or a non-2xx answer (a redirect
    included: it is not followed), UnsafeWebhookUrl for an address inside our network.

    The operator's own GATEWAY_ALERT_WEBHOOK_URL may be internal; an organisation's may not."""
    from_operator = url == settings.GATEWAY_ALERT_WEBHOOK_URL
    if not from_operator:
        webhook_urls.check_url(url)
    network = None if from_operator else webhook_urls.public_transport()
    with httpx.Client(
        timeout=WEBHOOK_TIMEOUT_S,
        transport=webhook_transport or network,
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment, and no credentials from .netrc
        headers={"User-Agent": "llm-gateway-alerts"},
    ) as client:
        client.post(url, json=payload).raise_for_status()


# alerts.py queues these and tasks.py imports alerts.py, so they live here, below both. They keep
# the names they had in tasks.py: messages queued by a process of the previous release still run.
@shared_task(name="analytics.tasks.send_alert_notifications")
def send_alert_notifications(alert_id: int, event: str) -> None:
    """E-mail now; each webhook gets its own task so a slow or failing one retries alone."""
    alert = Alert.objects.select_related("organization").get(id=alert_id)
    send_alert_email(alert, event)
    field = "recovery_notified_at" if event == RESOLVED else "notified_at"
    setattr(alert, field, timezone.now())
    alert.save(update_fields=[field])
    for url in alert_webhooks(alert):
        deliver_alert_webhook.delay(alert_id, event, url)


@shared_task(
    name="analytics.tasks.deliver_alert_webhook",
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=30,
    retry_kwargs={"max_retries": 5},
)
def deliver_alert_webhook(alert_id: int, event: str, url: str) -> None:
    alert = Alert.objects.select_related("organization").get(id=alert_id)
    post_alert_webhook(url, alert_payload(alert, event))
