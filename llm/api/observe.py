"""What every finished API call tells operators: Prometheus metrics and one JSON log line.

Both are in-memory operations (no I/O beyond the log handler), run after the response is settled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics import metrics
from analytics.logs import log_request
from llm.failover import SKIPPED
from llm.health import HealthState
from llm.runtime import get_runtime

if TYPE_CHECKING:
    from llm.api.pipeline import Call

HEALTH_GAUGE = {
    HealthState.HEALTHY: "up",
    HealthState.DEGRADED: "degraded",
    HealthState.DOWN: "down",
}


def observe_call(call: Call) -> None:
    route = call.route
    provider = (route.served_provider or "") if route else ""
    model = (route.served_model or "") if route else ""
    metrics.record_request(
        provider or "none",
        model or "none",
        call.endpoint,
        call.status,
        call.elapsed_ms / 1000,
        ttft_s=call.ttft_ms / 1000 if call.ttft_ms is not None else None,
        upstream_s=call.upstream_ms / 1000 if provider and call.cache_status != "HIT" else None,
        input_tokens=call.usage.input_tokens,
        output_tokens=call.usage.output_tokens,
        cost=call.cost,
        cache_hit=None if call.cache_status == "BYPASS" else call.cache_status == "HIT",
    )
    if route is not None:
        _observe_route(route)
    caller = call.caller
    log_request(
        request_id=call.request_id,
        org_id=caller.organization.pk if caller else None,
        key_id=caller.key.pk if caller else None,
        endpoint=call.endpoint,
        provider=provider,
        model=model or (call.parsed.model if call.parsed else ""),
        status=call.status,
        latency_ms=round(call.elapsed_ms),
        input_tokens=call.usage.input_tokens,
        output_tokens=call.usage.output_tokens,
        cost=call.cost,
        ttft_ms=round(call.ttft_ms) if call.ttft_ms is not None else None,
        upstream_ms=round(call.upstream_ms),
        cache_hit=call.cache_status == "HIT",
        stream=call.stream,
        error_class=call.error_class,
    )


def _observe_route(route) -> None:
    tried = [a.provider for a in route.attempts if a.error_kind not in (None, *SKIPPED)]
    served = route.served_provider
    for failed, following in zip(tried, [*tried[1:], served], strict=False):
        if following and following != failed:
            metrics.record_failover(failed, following)
    runtime = get_runtime()
    open_circuits = runtime.breaker.known_open()
    for provider in {a.provider for a in route.attempts} | ({served} if served else set()):
        gauge = HEALTH_GAUGE.get(runtime.health.state(provider))
        if gauge:
            metrics.set_provider_health(provider, gauge)
        metrics.set_circuit_state(provider, "open" if provider in open_circuits else "closed")


def observe_refusal(kind: str) -> None:
    metrics.record_refusal("quota" if kind in ("quota", "budget") else kind)
