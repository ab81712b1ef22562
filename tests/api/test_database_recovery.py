"""A database that drops its connections (a restart) or goes away for a while: the API answers
503 with Retry-After meanwhile, never a traceback, and uses the database again when it is back,
with no restart. Paths outside a request (key lookup in worker threads, the usage flush, the
admission's usage loader, Celery tasks) retry once on a fresh connection."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import httpx
import psycopg
import pytest
from django.db import OperationalError, connection

from analytics.models import UsageRecord
from analytics.recording import _sum_month
from analytics.tasks import evaluate_alert_rules
from analytics.usage_writer import serialise_usage, write_usage_payloads
from llm.api import auth
from organizations.database import with_live_connection

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(autouse=True)
def _fresh_connection_afterwards():
    """A test that killed connections leaves none dead behind for the next one."""
    yield
    connection.close()


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("killing server connections needs PostgreSQL (CI runs on it)")


@contextmanager
def admin_connection():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:
        yield admin


def kill_connections(*, mine_too: bool = True) -> int:
    """What a database restart does to every open connection of the test database."""
    keep = -1 if mine_too else connection.connection.info.backend_pid
    with admin_connection() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
            [connection.settings_dict["NAME"], keep],
        ).fetchall()
    return len(rows)


@contextmanager
def database_away():
    """New connections are refused and existing ones are cut, as while a server is down."""
    name = connection.settings_dict["NAME"]
    connection.close()
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        kill_connections()
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def usage(org, n):
    return {
        "request_id": f"req-recovery-{n}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.001"),
        "created_at": datetime.now(UTC),
    }


def test_a_dead_connection_is_replaced_once_and_the_work_retried():
    calls = []

    @with_live_connection
    def work():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the connection is closed")
        return "done"

    assert work() == "done" and len(calls) == 2


def test_the_usage_flush_survives_a_database_restart(org):
    needs_postgresql()
    write_usage_payloads([serialise_usage(usage(org, 1))])  # the connection is open now
    kill_connections()
    assert write_usage_payloads([serialise_usage(usage(org, 2))]) == 1
    assert UsageRecord.objects.filter(request_id__startswith="req-recovery").count() == 2


def test_the_admission_usage_loader_survives_a_database_restart(org):
    needs_postgresql()
    write_usage_payloads([serialise_usage(usage(org, 1))])
    kill_connections()
    month = _sum_month(org.id, None, datetime.now(UTC) - timedelta(days=1))
    assert month.tokens == 15


def test_a_celery_task_survives_a_database_restart(org):
    needs_postgresql()
    UsageRecord.objects.exists()
    kill_connections()
    # Through the task class, as a worker runs it; the task queries the database at once.
    evaluate_alert_rules.apply().get()


def test_the_api_recovers_from_a_database_restart_without_a_restart(gateway, key):
    needs_postgresql()
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=headers).is_success
    kill_connections(mine_too=False)  # the gateway's worker threads held theirs
    auth.forget_cached_keys()  # so the next request looks the key up again
    statuses = []
    for _ in range(5):
        statuses.append(
            httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=headers).status_code
        )
        auth.forget_cached_keys()
    assert statuses == [200] * 5


def test_while_the_database_is_away_the_api_answers_503_then_recovers(gateway, key):
    needs_postgresql()
    headers = {"Authorization": f"Bearer {key}"}
    with database_away():
        auth.forget_cached_keys()
        response = httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=headers)
        models = httpx.get(f"{gateway}/v1/models", headers=headers)
    assert response.status_code == 503 and models.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable" and "Traceback" not in response.text
    auth.forget_cached_keys()
    assert httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=headers).is_success


def test_a_database_error_in_the_key_lookup_is_a_503_on_any_database(gateway, key):
    """The same answer on SQLite, where the outage is simulated at the lookup."""
    auth.forget_cached_keys()
    failing = mock.patch.object(auth, "find_api_key", side_effect=OperationalError("gone"))
    with failing:
        response = httpx.post(
            f"{gateway}/v1/chat/completions",
            json=HELLO,
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json()["error"]["type"] == "service_unavailable"


@pytest.mark.django_db
def test_the_management_api_answers_503_while_the_database_is_away(api_client, owner):
    api_client.force_authenticate(owner)
    with mock.patch("organizations.api.visible_keys", side_effect=OperationalError("gone")):
        response = api_client.get("/api/auth/api-keys")
    assert response.status_code == 503 and response["Retry-After"] == "5"
