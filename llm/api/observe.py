"""What every settled API call tells operators: Prometheus metrics and one JSON log line.

Both are in-memory operations (no I/O beyond the log handler), run by settle from the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analytics import metrics
from analytics.logs import log_request, redact
from llm.health import HealthState
from llm.route_info import SKIPPED
from llm.runtime import get_runtime
from llm.tokens import message_text

if TYPE_CHECKING:
    from llm.api.call import Call
    from llm.outcome import Outcome

HEALTH_GAUGE = {
    HealthState.HEALTHY: "up",
    HealthState.DEGRADED: "degraded",
    HealthState.DOWN: "down",
}


MAX_PROMPT_CHARS = 32_000  # what a usage record and a log line keep of a logged prompt


def redacted_prompt(messages: list[dict[str, Any]]) -> str:
    """The prompt as "role: text" lines, secrets masked, cut to MAX_PROMPT_CHARS."""
    lines = [f"{m.get('role', '')}: {message_text(m)}" for m in messages]
    return redact("\n".join(lines))[:MAX_PROMPT_CHARS]


def observe_call(call: Call, outcome: Outcome) -> None:
    """The metrics and the request log line of a settled call, both from its outcome."""
    route = outcome.route
    provider = (route.served_provider or "") if route else ""
    model = (route.served_model or "") if route else ""
    usage = outcome.usage
    metrics.record_request(
        provider or "none",
        model or "none",
        call.endpoint,
        outcome.status,
        call.elapsed_ms / 1000,
        ttft_s=outcome.ttft_ms / 1000 if outcome.ttft_ms is not None else None,
        upstream_s=outcome.upstream_ms / 1000 if provider and not outcome.cache_hit else None,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.output_tokens,
        cost=outcome.cost,
        cache_hit=None if call.cache_status == "BYPASS" else outcome.cache_hit,
    )
    if route is not None:
        _observe_route(route)
    caller = call.caller
    prompt_logging = bool(caller and caller.organization.prompt_logging and not call.no_store)
    log_request(
        request_id=call.client_request_id or call.request_id,  # as in X-Request-ID
        org_id=caller.organization.pk if caller else None,
        key_id=caller.key.pk if caller else None,
        endpoint=call.endpoint,
        provider=provider,
        model=model or (call.parsed.model if call.parsed else ""),
        status=outcome.status,
        latency_ms=round(call.elapsed_ms),
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.output_tokens,
        cost=outcome.cost,
        ttft_ms=round(outcome.ttft_ms) if outcome.ttft_ms is not None else None,
        upstream_ms=round(outcome.upstream_ms),
        cache_hit=outcome.cache_hit,
        stream=call.stream,
        error_class=outcome.error_class,
        prompt=redacted_prompt(call.parsed.request.messages)
        if prompt_logging and call.parsed
        else None,
        prompt_logging=prompt_logging,
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
