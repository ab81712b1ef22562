"""An API key in a query string is refused (400) and never written to any log, including the
plain uvicorn access log that `make run` shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "gw-0123456789ab_" + "S" * 43  # shaped like a real key; refused before any lookup


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/v1/models?api_key={key}",
        "/v1/models?key={key}",
        "/v1/models?anything={key}",
        "/api/v1/models?token={key}",
    ],
)
def test_a_key_in_the_query_string_is_refused_by_the_public_api(client, key, url):
    response = client.get(url.format(key=key), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "api_key_in_query"
    assert key not in response.content.decode()


@pytest.mark.django_db
def test_a_key_in_the_query_string_is_refused_by_the_management_api(client, key):
    response = client.get(f"/api/org?key={key}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert key not in response.content.decode()


def test_the_make_run_access_log_never_shows_a_key(tmp_path):
    """uvicorn as `make run` starts it, access log on; a key in a URL must come out masked."""
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "REDIS_URL": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        statuses = [
            httpx.get(f"{base}/v1/models?api_key={FAKE_KEY}").status_code,
            httpx.post(f"{base}/v1/chat/completions?key={FAKE_KEY}", json={}).status_code,
            httpx.get(f"{base}/static/nothing.css?k={FAKE_KEY}").status_code,
        ]
        assert statuses[:2] == [400, 400]
    finally:
        server.terminate()
        server.wait(timeout=15)
    log.seek(0)
    written = log.read()
    assert '"GET /v1/models?api_key=' in written  # the access log is on, and has the lines
    assert FAKE_KEY not in written and FAKE_KEY[16:] not in written
    assert "[redacted]" in written
