"""/metrics: closed without a token, refuses bad tokens and foreign addresses, and shows values that
move with real requests, also when several processes record them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from analytics import metrics

ROOT = Path(__file__).resolve().parents[2]


def value_in(body: str, name: str, **labels) -> float:
    """The value of one series in an exposition body (0.0 when it is not there)."""
    for line in body.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        series, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if series.split("{")[0] == name and found == labels:
            return float(value)
    return 0.0


def test_metrics_is_closed_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_refuses_a_request_without_the_token(client, metrics_token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"gateway_" not in response.content


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong-token", "Basic " + "x" * 20, "Bearer", "scrape-token"]
)
def test_metrics_refuses_a_wrong_token(client, metrics_token, authorization):
    assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 401


def test_metrics_refuses_an_address_outside_the_allow_list(client, metrics_token, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.7"]
    response = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}", REMOTE_ADDR="127.0.0.1"
    )
    assert response.status_code == 403


def test_metrics_serves_an_address_inside_the_allow_list(client, metrics_token, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.7"]
    response = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}", REMOTE_ADDR="10.2.3.4"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_scrape_shows_recorded_requests(scrape):
    labels = {
        "provider": "deepseek",
        "model": "deepseek-chat",
        "endpoint": "chat.completions",
        "status_class": "4xx",
    }
    before = value_in(scrape(), "gateway_requests_total", **labels)

    metrics.record_request("deepseek", "deepseek-chat", "chat.completions", 429, 0.01)
    metrics.record_refusal("rate_limit")

    after = scrape()
    assert value_in(after, "gateway_requests_total", **labels) == before + 1
    assert "# TYPE gateway_request_duration_seconds histogram" in after
    assert "gateway_refusals_total" in after


@pytest.mark.django_db
def test_database_metrics_move_with_real_requests(client, scrape):
    """The probe runs a query through the instrumented database backend."""
    labels = {"alias": "default", "vendor": connection.vendor}
    before = value_in(scrape(), "django_db_execute_total", **labels)

    assert client.get("/readyz").status_code in {200, 503}
    assert client.get("/readyz").status_code in {200, 503}

    assert value_in(scrape(), "django_db_execute_total", **labels) >= before + 2


def test_scrape_merges_the_samples_of_several_processes(
    client, metrics_token, tmp_path, monkeypatch
):
    """Two server processes record requests; one scrape answers with their sum."""
    record = (
        "from decimal import Decimal\n"
        "from analytics import metrics\n"
        "metrics.record_request('openai', 'gpt-4o', 'chat.completions', 200, 0.5,"
        " input_tokens=10, output_tokens=5, cost=Decimal('0.25'))\n"
        "metrics.set_provider_health('openai', 'up')\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", record], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one set of files per process

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    body = response.content.decode()

    labels = {"provider": "openai", "model": "gpt-4o", "endpoint": "chat.completions"}
    assert value_in(body, "gateway_requests_total", **labels, status_class="2xx") == 2
    pm = {"provider": "openai", "model": "gpt-4o"}
    assert value_in(body, "gateway_tokens_total", **pm, direction="input") == 20
    assert value_in(body, "gateway_cost_usd_total", **pm) == pytest.approx(0.5)
    assert value_in(body, "gateway_request_duration_seconds_count", **labels) == 2
    assert value_in(body, "gateway_provider_health", provider="openai") == 1
