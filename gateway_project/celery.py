"""The Celery app: configured from Django settings (CELERY_*); finds each app's tasks.py.

A task whose database connection died (a database restart) is retried once on a fresh one (all
our tasks are idempotent), so a database restart needs no worker restart.
"""

from __future__ import annotations

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")


class DatabaseTask(Task):
    def __call__(self, *args, **kwargs):
        from organizations.database import with_live_connection

        return with_live_connection(super().__call__)(*args, **kwargs)


app = Celery("gateway", task_cls=DatabaseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The edge is a package of the llm app, not an app of its own: name it to find its tasks.py.
app.autodiscover_tasks(["llm.api"])
