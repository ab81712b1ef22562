"""Readiness checks: can this process reach the database, Redis and the Celery broker?

Each check returns a `CheckResult`; none raises. Timeouts are short so a hung dependency makes
`/readyz` answer "not ready" quickly instead of hanging the load balancer's probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connections

TIMEOUT_S = 1.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    duration_ms: int

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(check: Callable[[], str]) -> CheckResult:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # any failure of a dependency means "not ready", never a 500
        detail = f"{exc.__class__.__name__}: {str(exc)[:200]}"
        ok = False
    return CheckResult(ok, detail, int((time.monotonic() - started) * 1000))


def _ping_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connections["default"].vendor


def _ping_redis_url(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()
    return "pong"


def _ping_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured (embedded store)"
    return _ping_redis_url(settings.REDIS_URL)


def _ping_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://") or settings.CELERY_TASK_ALWAYS_EAGER:
        return "not configured (tasks run in-process)"
    if url.startswith(("redis://", "rediss://")):
        return _ping_redis_url(url)
    from kombu import Connection

    with Connection(url, connect_timeout=TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_S)
    return "connected"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _ping_database,
    "redis": _ping_redis,
    "broker": _ping_broker,
}


def run_readiness_checks() -> dict[str, CheckResult]:
    return {name: _timed(check) for name, check in CHECKS.items()}


def is_ready(results: dict[str, CheckResult]) -> bool:
    return all(result.ok for result in results.values())
