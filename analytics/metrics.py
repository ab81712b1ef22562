"""The gateway's Prometheus metrics and the small functions the request path calls to record them.

Every `record_*` / `set_*` function only touches in-memory prometheus_client objects: no I/O, safe
on the async hot path. Labels are bounded: provider and model come from the catalogue, endpoint is
one of the gateway's endpoints, status is a class (2xx/4xx/5xx). Organisation and key ids never
become labels (they live in the usage records and the JSON request log).

With several server processes set PROMETHEUS_MULTIPROC_DIR *before* the process starts (the
prometheus_client library reads it at import): each process then writes its samples to files in
that directory and `/metrics` merges them (see analytics/metrics_export.py).
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets for LLM calls: most answers take between 0.2 s and a minute.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, float("inf"))
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 4, 8, 15, float("inf"))

# A guard against unbounded label values (say a typo'd model name slipping through): past this
# many distinct values per label, new values are recorded as "other".
MAX_LABEL_VALUES = 300
MAX_LABEL_LENGTH = 80
OTHER = "other"

CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
HEALTH_STATES = {"down": 0.0, "degraded": 0.5, "up": 1.0}
REFUSAL_KINDS = frozenset({"rate_limit", "quota"})
TASK_OUTCOMES = frozenset({"success", "failure", "retry"})

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered by the gateway.",
    ["provider", "model", "endpoint", "status_class"],
)
REQUEST_LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Total time from request received to last byte sent.",
    ["provider", "model", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gateway_time_to_first_token_seconds",
    "Time from request received to the first streamed token.",
    ["provider", "model", "endpoint"],
    buckets=TTFT_BUCKETS,
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_duration_seconds",
    "Time spent waiting on the provider.",
    ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "gateway_tokens", "Tokens processed.", ["provider", "model", "direction"]
)  # direction: input | output
COST = Counter("gateway_cost_usd", "Cost charged to organisations, in USD.", ["provider", "model"])
CACHE = Counter("gateway_cache_requests", "Response-cache lookups.", ["endpoint", "result"])
USAGE_ANOMALIES = Counter(
    "gateway_usage_anomalies",
    "Upstream usage reports above what the request could produce (billed at the bound).",
    ["provider"],
)
REFUSALS = Counter("gateway_refusals", "Requests refused by admission control.", ["kind"])
FAILOVERS = Counter(
    "gateway_failovers", "Requests moved to another provider.", ["from_provider", "to_provider"]
)
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state",
    "Circuit breaker state per provider: 0 closed, 1 half open, 2 open.",
    ["provider"],
    multiprocess_mode="livemax",  # the worst state any live process sees
)
PROVIDER_HEALTH = Gauge(
    "gateway_provider_health",
    "Provider health: 1 up, 0.5 degraded, 0 down.",
    ["provider"],
    multiprocess_mode="livemin",  # the worst health any live process sees
)
CELERY_TASKS = Counter(
    "gateway_celery_tasks", "Celery task outcomes.", ["task", "outcome"]
)  # outcome: success | failure | retry
QUEUE_LENGTH = Gauge(
    "gateway_celery_queue_length",
    "Messages waiting in a Celery queue.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
USAGE_FLUSH_LAST_SUCCESS = Gauge(
    "gateway_usage_flush_last_success_timestamp_seconds",
    "When buffered usage was last written to the database (Unix time).",
    multiprocess_mode="max",
)
USAGE_FLUSH_LAG = Gauge(
    "gateway_usage_flush_lag_seconds",
    "Age of the oldest usage entry still waiting to be written.",
    multiprocess_mode="mostrecent",
)
USAGE_DEAD_LETTERS = Counter(
    "gateway_usage_dead_letters",
    "Usage records the database refused, kept in the dead-letter table.",
)
ALERTS_FIRED = Counter("gateway_alerts_fired", "Alerts raised by the gateway.", ["kind"])

_seen_label_values: dict[str, set[str]] = {}


def bound_label(name: str, value: str | None) -> str:
    """The value to use for label `name`: truncated, and "other" once too many were seen."""
    value = (value or "unknown")[:MAX_LABEL_LENGTH]
    seen = _seen_label_values.setdefault(name, set())
    if value in seen:
        return value
    if len(seen) >= MAX_LABEL_VALUES:
        return OTHER
    seen.add(value)
    return value


def status_class(status: int) -> str:
    """200 -> "2xx"; anything outside 100..599 is "other"."""
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


# Each answered request touches up to eight labelled series; prometheus_client's labels() checks
# and locks on every call, so the series are looked up here once per label set.
_series: dict[tuple, Any] = {}
_MAX_SERIES = 20_000  # past that (label values are bounded anyway) they are not kept


def _labelled(metric: Any, *labels: str) -> Any:
    key = (metric, labels)
    series = _series.get(key)
    if series is None:
        series = metric.labels(*labels)
        if len(_series) < _MAX_SERIES:
            _series[key] = series
    return series


def record_request(
    provider: str,
    model: str,
    endpoint: str,
    status: int,
    latency_s: float,
    ttft_s: float | None = None,
    upstream_s: float | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost: Decimal = Decimal(0),
    cache_hit: bool | None = None,
) -> None:
    """Record one answered request. `cache_hit=None` means the endpoint has no response cache."""
    provider = bound_label("provider", provider)
    model = bound_label("model", model)
    endpoint = bound_label("endpoint", endpoint)
    _labelled(REQUESTS, provider, model, endpoint, status_class(status)).inc()
    _labelled(REQUEST_LATENCY, provider, model, endpoint).observe(latency_s)
    if ttft_s is not None:
        _labelled(TIME_TO_FIRST_TOKEN, provider, model, endpoint).observe(ttft_s)
    if upstream_s is not None:
        _labelled(UPSTREAM_LATENCY, provider, model).observe(upstream_s)
    if input_tokens:
        _labelled(TOKENS, provider, model, "input").inc(input_tokens)
    if output_tokens:
        _labelled(TOKENS, provider, model, "output").inc(output_tokens)
    # Prometheus samples are floats; the exact Decimal lives in the usage record.
    # Touch the series even at zero cost so "tokens > 0 but cost = 0" is visible.
    _labelled(COST, provider, model).inc(float(cost))
    if cache_hit is not None:
        _labelled(CACHE, endpoint, "hit" if cache_hit else "miss").inc()


def record_refusal(kind: str) -> None:
    """A request refused by admission control: kind is "rate_limit" or "quota"."""
    REFUSALS.labels(kind if kind in REFUSAL_KINDS else OTHER).inc()


def record_failover(from_provider: str, to_provider: str) -> None:
    FAILOVERS.labels(
        bound_label("provider", from_provider), bound_label("provider", to_provider)
    ).inc()


def set_circuit_state(provider: str, state: str) -> None:
    """state: "closed", "half_open" or "open"."""
    _set_gauge(CIRCUIT_STATE, bound_label("provider", provider), CIRCUIT_STATES[state])


def set_provider_health(provider: str, state: str) -> None:
    """state: "up", "degraded" or "down"."""
    _set_gauge(PROVIDER_HEALTH, bound_label("provider", provider), HEALTH_STATES[state])


# What this process last set each gauge series to. Every answered request sets the health and
# circuit gauges of the providers it touched, and they seldom change: a series already at the
# value is left alone (no label lookup, no lock). These functions are the gauges' only writers.
_gauge_values: dict[tuple[Any, str], float] = {}
# A forked child writes its own samples (multiprocess mode: its own files), so it sets them anew.
os.register_at_fork(after_in_child=_gauge_values.clear)


def _set_gauge(gauge: Gauge, label: str, value: float) -> None:
    key = (gauge, label)
    if _gauge_values.get(key) != value:
        gauge.labels(label).set(value)
        _gauge_values[key] = value


def record_task_outcome(task_name: str | None, outcome: str) -> None:
    """A Celery task finished (success / failure) or was retried."""
    CELERY_TASKS.labels(
        bound_label("task", task_name), outcome if outcome in TASK_OUTCOMES else OTHER
    ).inc()


def set_queue_length(queue: str, length: int) -> None:
    QUEUE_LENGTH.labels(bound_label("queue", queue)).set(length)


def record_usage_flush(lag_s: float = 0.0, at: float | None = None) -> None:
    """Buffered usage was written; `lag_s` is the age of the oldest entry still waiting."""
    USAGE_FLUSH_LAST_SUCCESS.set(time.time() if at is None else at)
    USAGE_FLUSH_LAG.set(lag_s)


def record_usage_dead_letter() -> None:
    USAGE_DEAD_LETTERS.inc()


def record_usage_anomaly(provider: str) -> None:
    USAGE_ANOMALIES.labels(bound_label("provider", provider)).inc()


def record_alert_fired(kind: str) -> None:
    ALERTS_FIRED.labels(bound_label("alert", kind)).inc()
