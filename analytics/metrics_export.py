"""What `/metrics` serves and who may read it.

One process: the default registry (gateway metrics, django-prometheus's database and cache metrics,
process metrics). Several processes (PROMETHEUS_MULTIPROC_DIR set): a fresh registry that merges the
files every process writes, so counters sum across processes and gauges follow their
`multiprocess_mode`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from analytics import metrics

logger = logging.getLogger(__name__)


def is_metrics_enabled() -> bool:
    """Closed unless an operator configured a token."""
    return bool(settings.METRICS_TOKEN)


def has_valid_token(authorization: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


def is_ip_allowed(remote_addr: str) -> bool:
    """True when no allow-list is set, or the address is in one of its IPs / networks."""
    allowed = settings.METRICS_ALLOWED_IPS
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def build_registry() -> CollectorRegistry:
    path = multiprocess_dir()
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def measure_queue_lengths() -> None:
    """Queue depth at scrape time, from the Redis broker (skipped when the broker is not Redis)."""
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://")):
        return
    import redis

    try:
        client = redis.Redis.from_url(broker, socket_timeout=0.5, socket_connect_timeout=0.5)
        for queue in settings.GATEWAY_METRICS_QUEUES:
            metrics.set_queue_length(queue, client.llen(queue))
    except redis.RedisError as exc:
        logger.warning("queue length unavailable: %s", exc.__class__.__name__)


def render_metrics() -> tuple[bytes, str]:
    """(body, content type) of the exposition."""
    measure_queue_lengths()
    return generate_latest(build_registry()), CONTENT_TYPE_LATEST


def start_worker_exporter() -> None:
    """Celery workers are separate processes (often separate hosts): with
    GATEWAY_WORKER_METRICS_PORT set, the worker serves its own metrics (task outcomes, alert
    counts) on that port for Prometheus. No token there: keep the port on the internal network."""
    port = settings.GATEWAY_WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    start_http_server(port, registry=build_registry())
    logger.info("worker metrics on port %s", port)


def forget_dead_process(pid: int) -> None:
    """A worker process exited: drop its live gauges (multiprocess mode only)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
