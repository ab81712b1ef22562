"""The record functions the request pipeline calls move the right series, with bounded labels."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics import metrics
from analytics.tasks import evaluate_alert_rules
from gateway_project.celery import app as celery_app


def test_record_request_counts_the_request_by_status_class(sample):
    labels = {"provider": "openai", "model": "gpt-4o-mini", "endpoint": "chat.completions"}
    before = sample("gateway_requests_total", **labels, status_class="2xx")
    before_errors = sample("gateway_requests_total", **labels, status_class="5xx")

    metrics.record_request(**labels, status=200, latency_s=0.8)
    metrics.record_request(**labels, status=201, latency_s=0.2)
    metrics.record_request(**labels, status=502, latency_s=3.0)

    assert sample("gateway_requests_total", **labels, status_class="2xx") == before + 2
    assert sample("gateway_requests_total", **labels, status_class="5xx") == before_errors + 1


@pytest.mark.parametrize("kept", [0, 20_000], ids=["series-not-kept", "series-kept"])
def test_a_label_set_seen_before_moves_the_same_series(sample, monkeypatch, kept):
    monkeypatch.setattr(metrics, "_series", {})
    monkeypatch.setattr(metrics, "_MAX_SERIES", kept)
    labels = {"provider": "mistral", "model": "mistral-small", "endpoint": "chat.completions"}
    before = sample("gateway_requests_total", **labels, status_class="2xx")
    for _ in range(3):
        metrics.record_request(**labels, status=200, latency_s=0.1, input_tokens=5)
    assert sample("gateway_requests_total", **labels, status_class="2xx") == before + 3
    assert len(metrics._series) == (4 if kept else 0)  # requests, latency, tokens, cost


def test_record_request_observes_latencies_tokens_cost_and_cache(sample):
    labels = {"provider": "anthropic", "model": "claude-sonnet", "endpoint": "chat.completions"}
    pm = {"provider": "anthropic", "model": "claude-sonnet"}
    count = sample("gateway_request_duration_seconds_count", **labels)
    total = sample("gateway_request_duration_seconds_sum", **labels)
    ttft = sample("gateway_time_to_first_token_seconds_count", **labels)
    upstream = sample("gateway_upstream_duration_seconds_sum", **pm)
    tokens_in = sample("gateway_tokens_total", **pm, direction="input")
    tokens_out = sample("gateway_tokens_total", **pm, direction="output")
    cost = sample("gateway_cost_usd_total", **pm)
    hits = sample("gateway_cache_requests_total", endpoint="chat.completions", result="hit")
    misses = sample("gateway_cache_requests_total", endpoint="chat.completions", result="miss")

    metrics.record_request(
        **labels,
        status=200,
        latency_s=1.5,
        ttft_s=0.3,
        upstream_s=1.25,
        input_tokens=120,
        output_tokens=30,
        cost=Decimal("0.00045"),
        cache_hit=False,
    )
    metrics.record_request(**labels, status=200, latency_s=0.01, cache_hit=True)

    assert sample("gateway_request_duration_seconds_count", **labels) == count + 2
    assert sample("gateway_request_duration_seconds_sum", **labels) == pytest.approx(total + 1.51)
    assert sample("gateway_time_to_first_token_seconds_count", **labels) == ttft + 1
    assert sample("gateway_upstream_duration_seconds_sum", **pm) == pytest.approx(upstream + 1.25)
    assert sample("gateway_tokens_total", **pm, direction="input") == tokens_in + 120
    assert sample("gateway_tokens_total", **pm, direction="output") == tokens_out + 30
    assert sample("gateway_cost_usd_total", **pm) == pytest.approx(cost + 0.00045)
    assert sample("gateway_cache_requests_total", endpoint="chat.completions", result="hit") == (
        hits + 1
    )
    assert sample("gateway_cache_requests_total", endpoint="chat.completions", result="miss") == (
        misses + 1
    )


def test_refusals_and_failovers_are_counted(sample):
    rate = sample("gateway_refusals_total", kind="rate_limit")
    quota = sample("gateway_refusals_total", kind="quota")
    moved = sample("gateway_failovers_total", from_provider="groq", to_provider="together")

    metrics.record_refusal("rate_limit")
    metrics.record_refusal("rate_limit")
    metrics.record_refusal("quota")
    metrics.record_failover("groq", "together")

    assert sample("gateway_refusals_total", kind="rate_limit") == rate + 2
    assert sample("gateway_refusals_total", kind="quota") == quota + 1
    assert (
        sample("gateway_failovers_total", from_provider="groq", to_provider="together") == moved + 1
    )


def test_circuit_and_health_gauges_follow_the_latest_state(sample):
    metrics.set_circuit_state("mistral", "open")
    assert sample("gateway_circuit_state", provider="mistral") == 2
    metrics.set_circuit_state("mistral", "half_open")
    assert sample("gateway_circuit_state", provider="mistral") == 1
    metrics.set_circuit_state("mistral", "closed")
    assert sample("gateway_circuit_state", provider="mistral") == 0

    metrics.set_provider_health("mistral", "down")
    assert sample("gateway_provider_health", provider="mistral") == 0
    metrics.set_provider_health("mistral", "degraded")
    assert sample("gateway_provider_health", provider="mistral") == 0.5
    metrics.set_provider_health("mistral", "up")
    assert sample("gateway_provider_health", provider="mistral") == 1


def test_a_gauge_already_at_its_value_is_left_alone_and_a_change_still_shows(sample, monkeypatch):
    metrics.set_provider_health("cohere", "up")
    metrics.set_circuit_state("cohere", "closed")
    looked_up = []
    for gauge in (metrics.PROVIDER_HEALTH, metrics.CIRCUIT_STATE):
        labels = gauge.labels
        monkeypatch.setattr(gauge, "labels", lambda *a, _l=labels: looked_up.append(a) or _l(*a))

    metrics.set_provider_health("cohere", "up")
    metrics.set_circuit_state("cohere", "closed")
    assert looked_up == []

    metrics.set_provider_health("cohere", "degraded")
    metrics.set_circuit_state("cohere", "open")
    assert sample("gateway_provider_health", provider="cohere") == 0.5
    assert sample("gateway_circuit_state", provider="cohere") == 2
    metrics.set_provider_health("cohere", "up")
    metrics.set_circuit_state("cohere", "closed")
    assert sample("gateway_provider_health", provider="cohere") == 1
    assert sample("gateway_circuit_state", provider="cohere") == 0
    assert len(looked_up) == 4


def test_an_unknown_circuit_state_is_a_programming_error():
    with pytest.raises(KeyError):
        metrics.set_circuit_state("mistral", "sideways")


def test_status_classes():
    assert metrics.status_class(200) == "2xx"
    assert metrics.status_class(429) == "4xx"
    assert metrics.status_class(504) == "5xx"
    assert metrics.status_class(0) == "other"


def test_label_values_are_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_seen_label_values", {})
    monkeypatch.setattr(metrics, "MAX_LABEL_VALUES", 3)

    kept = [metrics.bound_label("model", f"model-{i}") for i in range(3)]
    assert kept == ["model-0", "model-1", "model-2"]
    assert metrics.bound_label("model", "model-3") == "other"
    assert metrics.bound_label("model", "model-1") == "model-1"  # known values stay
    assert metrics.bound_label("model", "x" * 500) == "other"
    assert len(metrics.bound_label("provider", "p" * 500)) == metrics.MAX_LABEL_LENGTH


def test_unknown_refusal_kinds_do_not_create_new_series(sample):
    other = sample("gateway_refusals_total", kind="other")
    metrics.record_refusal("org-1234")
    assert sample("gateway_refusals_total", kind="other") == other + 1
    assert sample("gateway_refusals_total", kind="org-1234") == 0


@pytest.mark.django_db
def test_celery_task_outcomes_are_counted(sample, eager_celery):
    name = evaluate_alert_rules.name
    before = sample("gateway_celery_tasks_total", task=name, outcome="success")

    evaluate_alert_rules.delay()

    assert sample("gateway_celery_tasks_total", task=name, outcome="success") == before + 1


@pytest.mark.django_db
def test_a_failing_celery_task_counts_as_failure(sample, eager_celery, monkeypatch):
    name = evaluate_alert_rules.name
    before = sample("gateway_celery_tasks_total", task=name, outcome="failure")

    def explode(now=None):
        raise RuntimeError("database gone")

    monkeypatch.setattr("analytics.alerts.evaluate_alerts", explode)
    # A worker does not propagate the error to the caller; that is the path the signal is on.
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)
    result = evaluate_alert_rules.delay()

    assert result.failed()

    assert sample("gateway_celery_tasks_total", task=name, outcome="failure") == before + 1
