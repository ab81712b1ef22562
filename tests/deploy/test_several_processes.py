"""Under gunicorn with two worker processes, one scrape of /metrics adds up what both served."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "several-processes-token"


def free_port() -> int:
    # Below the ephemeral range, so a client connection never takes it first.
    for _ in range(50):
        port = random.randint(20000, 30000)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port")


def get(url: str, token: str | None = None) -> tuple[int, str]:
    """A new connection per call, so gunicorn may hand it to either worker."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=5)
    return response.status_code, response.text


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "METRICS_TOKEN": TOKEN,
        "WEB_CONCURRENCY": "2",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    env.pop("REDIS_URL", None)  # the probes need nothing but the database here
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "gateway_project.asgi:application"]
        + ["-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        yield base, tmp_path / "prometheus"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_one_scrape_counts_the_queries_of_every_worker_process(gunicorn):
    base, metrics_dir = gunicorn
    for _ in range(12):
        assert get(f"{base}/readyz")[0] == 200  # one database query each, in either process

    status, body = get(f"{base}/metrics", TOKEN)

    assert status == 200
    pids = {re.search(r"_(\d+)\.db$", f.name).group(1) for f in metrics_dir.glob("*.db")}
    assert len(pids) == 2  # both workers write their samples
    match = re.search(
        r'^django_db_execute_total\{alias="default",vendor="sqlite"\} (\S+)$', body, re.M
    )
    assert match, body
    assert float(match.group(1)) == 12


def test_the_scrape_still_needs_the_token(gunicorn):
    base, _ = gunicorn
    assert get(f"{base}/metrics")[0] == 401
