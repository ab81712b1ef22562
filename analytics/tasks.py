"""Celery tasks of the analytics app."""

from __future__ import annotations

from celery import shared_task

from analytics.recording import flush_pending_usage


@shared_task(acks_late=True, ignore_result=True)
def flush_usage_records() -> int:
    """Drain queued usage records into the database (beat: every few seconds)."""
    return flush_pending_usage()
