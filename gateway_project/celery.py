"""The Celery app: configured from Django settings (CELERY_*); finds each app's tasks.py.

A task whose database connection died (a database restart) is retried once on a fresh one (all
our tasks are idempotent), so a database restart needs no worker restart. Every task is
acknowledged late (CELERY_TASK_ACKS_LATE); the options some tasks add are defined once here.
"""

from __future__ import annotations

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")


# Periodic jobs that may fail for a while (Stripe, a long roll-up): retried with backoff, and
# stopped if they run away. Each is safe to run twice.
RETRIED_JOB = {
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 5,
    "soft_time_limit": 240,
    "time_limit": 300,
}
# Jobs beat runs every few seconds: nobody reads their result, and the next run retries.
FREQUENT_JOB = {"ignore_result": True}


class DatabaseTask(Task):
    def __call__(self, *args, **kwargs):
        from gateway_project.database import with_live_connection

        return with_live_connection(super().__call__)(*args, **kwargs)


app = Celery("gateway", task_cls=DatabaseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
