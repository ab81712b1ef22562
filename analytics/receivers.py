"""Reactions to Celery's signals: task outcome metrics and the request id of the task.
Each receiver is one line calling a named function."""

from __future__ import annotations

import os

from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_process_shutdown,
    worker_ready,
)

from analytics import logs, metrics, metrics_export


@task_success.connect
def on_task_success(sender=None, **kwargs) -> None:
    metrics.record_task_outcome(getattr(sender, "name", None), "success")


@task_failure.connect
def on_task_failure(sender=None, **kwargs) -> None:
    metrics.record_task_outcome(getattr(sender, "name", None), "failure")


@task_retry.connect
def on_task_retry(sender=None, **kwargs) -> None:
    metrics.record_task_outcome(getattr(sender, "name", None), "retry")


@before_task_publish.connect
def on_before_task_publish(headers=None, **kwargs) -> None:
    logs.attach_request_id(headers)


@task_prerun.connect
def on_task_prerun(task_id=None, task=None, **kwargs) -> None:
    logs.adopt_request_id(task_id, task)


@task_postrun.connect
def on_task_postrun(task_id=None, **kwargs) -> None:
    logs.release_request_id(task_id)


@worker_ready.connect
def on_worker_ready(**kwargs) -> None:
    metrics_export.start_worker_exporter()


@worker_process_shutdown.connect
def on_worker_process_shutdown(pid=None, **kwargs) -> None:
    metrics_export.forget_dead_process(pid or os.getpid())
