"""Celery tasks of the analytics app. They take ids, never model objects."""

from __future__ import annotations

import logging

from celery import shared_task

from analytics import alerts
from analytics.recording import flush_pending_usage
from analytics.rollups import roll_up_usage

logger = logging.getLogger(__name__)

# Roll-ups: safe to run twice, each hour is rebuilt whole together with its mark.
ROLLUP_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 5,
    "soft_time_limit": 240,
    "time_limit": 300,
}


@shared_task
def evaluate_alert_rules() -> None:
    """Celery beat, every GATEWAY_ALERT_INTERVAL_SECONDS."""
    alerts.evaluate_alerts()


@shared_task(acks_late=True, ignore_result=True)
def flush_usage_records() -> int:
    """Drain queued usage records into the database (beat: every few seconds)."""
    return flush_pending_usage()


@shared_task(**ROLLUP_TASK_OPTIONS)
def roll_up_usage_records() -> str | None:
    mark = roll_up_usage()
    return mark.isoformat() if mark else None
