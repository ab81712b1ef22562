"""Celery tasks of the analytics app. They take ids, never model objects. Retries and time
limits: TASK_OPTIONS in gateway_project/celery.py."""

from __future__ import annotations

import logging

from celery import shared_task

from analytics import alerts
from analytics.recording import flush_pending_usage
from analytics.rollups import roll_up_usage

logger = logging.getLogger(__name__)


@shared_task
def evaluate_alert_rules() -> None:
    """Celery beat, every GATEWAY_ALERT_INTERVAL_SECONDS."""
    alerts.evaluate_alerts()


@shared_task
def flush_usage_records() -> int:
    """Drain queued usage records into the database (beat: every few seconds)."""
    return flush_pending_usage()


@shared_task
def roll_up_usage_records() -> str | None:
    """Safe to run twice: a run that finds another under way leaves the work to it, and a
    re-run rebuilds each hour whole."""
    mark = roll_up_usage()
    return mark.isoformat() if mark else None
