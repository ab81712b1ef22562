"""The Celery app: configured from Django settings (CELERY_*); finds each app's tasks.py.

A task whose database connection died (a database restart) is retried once on a fresh one (all
our tasks are idempotent), so a database restart needs no worker restart. Every task is
acknowledged late (CELERY_TASK_ACKS_LATE); TASK_OPTIONS below are what some tasks add.
"""

from __future__ import annotations

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")


class DatabaseTask(Task):
    def __call__(self, *args, **kwargs):
        from organizations.database import with_live_connection

        return with_live_connection(super().__call__)(*args, **kwargs)


# Options beyond the defaults (settings: CELERY_*), one definition each, given to tasks by name;
# Celery applies them when it binds each task. Retried: jobs that may fail for a while (Stripe,
# a long roll-up), retried with backoff and stopped if they run away; each is safe to run twice.
# Frequent: beat runs them every few seconds; nobody reads their result.
RETRIED = {
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 5,
    "soft_time_limit": 240,
    "time_limit": 300,
}
FREQUENT = {"ignore_result": True}
TASK_OPTIONS = {
    "analytics.tasks.roll_up_usage_records": RETRIED,
    "billing.tasks.report_metered_usage": RETRIED,
    "billing.tasks.report_all_metered_usage": RETRIED,
    "billing.tasks.sync_org_invoices": RETRIED,
    "billing.tasks.sync_all_invoices": RETRIED,
    "billing.tasks.downgrade_overdue_accounts": RETRIED,
    "billing.tasks.retry_failed_webhooks": RETRIED,
    "analytics.tasks.flush_usage_records": FREQUENT,
    "billing.tasks.sweep_interrupted_requests": FREQUENT,
    "llm.api.tasks.probe_idle_providers": FREQUENT,
}

app = Celery("gateway", task_cls=DatabaseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_annotations = TASK_OPTIONS
app.autodiscover_tasks()
# The edge is a package of the llm app, not an app of its own: name it to find its tasks.py.
app.autodiscover_tasks(["llm.api"])
