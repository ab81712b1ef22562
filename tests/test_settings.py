"""settings.py reads top to bottom: each setting is assigned once and never changed afterwards."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from django.conf import settings

from gateway_project.celery import TASK_OPTIONS, app

SETTINGS = Path(__file__).resolve().parent.parent / "gateway_project" / "settings.py"


def module_statements() -> list[ast.stmt]:
    return ast.parse(SETTINGS.read_text()).body


def test_every_setting_is_assigned_once_and_never_changed_later():
    assigned: list[str] = []
    changed: list[str] = []
    for node in module_statements():
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned.append(target.id)
                else:  # X["key"] = ..., X.attr = ...
                    changed.append(ast.unparse(target))
        elif isinstance(node, ast.AugAssign):  # X += ..., X |= ...
            changed.append(ast.unparse(node.target))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):  # X.insert(...)
            changed.append(ast.unparse(node.value.func))
    twice = sorted({name for name in assigned if assigned.count(name) > 1})
    assert twice == [] and changed == []


def test_every_scheduled_job_is_a_task_of_ours():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in scheduled:
        importlib.import_module(name.rpartition(".")[0])
    assert scheduled - set(app.tasks) == set()


def test_every_task_given_options_is_a_task_of_ours():
    annotated = set(TASK_OPTIONS)
    for name in annotated:
        importlib.import_module(name.rpartition(".")[0])
    assert annotated - set(app.tasks) == set()


def test_the_shared_task_options_reach_the_tasks():
    from analytics.tasks import evaluate_alert_rules, flush_usage_records, roll_up_usage_records
    from billing.tasks import report_metered_usage, sweep_interrupted_requests

    for task in (report_metered_usage, roll_up_usage_records):
        assert (task.max_retries, task.retry_backoff, task.time_limit) == (5, True, 300)
        assert task.autoretry_for == (Exception,)
    for task in (flush_usage_records, sweep_interrupted_requests):
        assert task.ignore_result and task.time_limit is None
    assert not evaluate_alert_rules.ignore_result and evaluate_alert_rules.max_retries == 3
    assert settings.CELERY_TASK_ACKS_LATE  # every task, so none repeats it
