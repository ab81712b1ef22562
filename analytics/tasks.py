"""Celery tasks of the analytics app. They take ids, never model objects. Retries and time
limits: TASK_OPTIONS in gateway_project/celery.py."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.utils import timezone

from analytics import alert_delivery, alerts
from analytics.models import Alert
from analytics.recording import flush_pending_usage
from analytics.rollups import roll_up_usage

logger = logging.getLogger(__name__)


@shared_task
def evaluate_alert_rules() -> None:
    """Celery beat, every GATEWAY_ALERT_INTERVAL_SECONDS."""
    alerts.evaluate_alerts()


@shared_task
def send_alert_notifications(alert_id: int, event: str) -> None:
    """E-mail now; each webhook gets its own task so a slow or failing one retries alone."""
    alert = Alert.objects.select_related("organization").get(id=alert_id)
    alert_delivery.send_alert_email(alert, event)
    field = "recovery_notified_at" if event == alerts.RESOLVED else "notified_at"
    setattr(alert, field, timezone.now())
    alert.save(update_fields=[field])
    for url in alert_delivery.alert_webhooks(alert):
        deliver_alert_webhook.delay(alert_id, event, url)


@shared_task(
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=30,
    retry_kwargs={"max_retries": 5},
)
def deliver_alert_webhook(alert_id: int, event: str, url: str) -> None:
    alert = Alert.objects.select_related("organization").get(id=alert_id)
    alert_delivery.post_alert_webhook(url, alert_delivery.alert_payload(alert, event))


@shared_task
def flush_usage_records() -> int:
    """Drain queued usage records into the database (beat: every few seconds)."""
    return flush_pending_usage()


@shared_task
def roll_up_usage_records() -> str | None:
    """Safe to run twice: each hour is rebuilt whole together with its mark."""
    mark = roll_up_usage()
    return mark.isoformat() if mark else None
