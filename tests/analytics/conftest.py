"""Fixtures of the observability tests: a metrics token, eager Celery with on-commit callbacks run,
and a free loopback port nothing listens on."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import REGISTRY

from gateway_project.celery import app as celery_app

METRICS_TOKEN = "scrape-token-for-tests-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return METRICS_TOKEN


@pytest.fixture
def scrape(client, metrics_token):
    """scrape() -> the /metrics body as text, read with the token like Prometheus does."""

    def read() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
        assert response.status_code == 200, response.content
        return response.content.decode()

    return read


@pytest.fixture
def sample():
    """sample(name, **labels) -> the current value in this process's registry (0.0 if absent)."""

    def read(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return read


@pytest.fixture
def eager_celery(monkeypatch):
    """Tasks run in-process even when the suite runs against a Redis broker."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
