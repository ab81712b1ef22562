"""Celery tasks of analytics. Safe to run twice: each hour is rebuilt whole with its mark."""

from __future__ import annotations

from celery import shared_task

from analytics.rollups import roll_up_usage

TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 5,
    "soft_time_limit": 240,
    "time_limit": 300,
}


@shared_task(**TASK_OPTIONS)
def roll_up_usage_records() -> str | None:
    mark = roll_up_usage()
    return mark.isoformat() if mark else None
