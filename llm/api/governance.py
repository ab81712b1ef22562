"""The pipeline's link to admission control, the response cache and usage recording.

One module so the request path reads as steps while the policies live in their apps:
rate limits and quota reservations in billing, the response cache here in llm/api, usage records
in analytics.
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async

from analytics import metrics
from analytics.alert_rules import Condition
from analytics.alerts import fire_alert
from analytics.models import AlertKind
from analytics.recording import enqueue_usage, load_month_usage
from analytics.usage_writer import serialise_usage
from billing import admission as admission_control
from llm.api import response_cache
from llm.api.auth import Caller
from llm.api.errors import ApiError
from llm.api.observe import observe_refusal
from llm.api.parsing import ParsedChat
from llm.outcome import Outcome
from llm.types import ChatResult, EmbeddingResult, ToolCall, Usage


async def admit(
    caller: Caller, tokens: int, cost: Decimal, held_row: dict[str, Any] | None = None
) -> Any:
    """Check every limit and reserve the worst case in one step; 429 (or 402) when refused.
    `held_row` is kept beside the reservation: the row written if this process dies first."""
    decision = await admission_control.admit(
        caller.organization.pk,
        caller.key.pk,
        caller.limits,
        caller.key,
        tokens,
        cost,
        load_usage=load_month_usage,
        usage_row=held_row,
    )
    if not decision.admitted:
        observe_refusal(decision.kind)
        # Budgets and quotas are 429 like rate limits (OpenAI's insufficient_quota is a 429 too);
        # "unavailable" means Redis is down and the operator chose to fail closed.
        status = 503 if decision.kind == "unavailable" else 429
        headers = dict(decision.headers)
        if decision.retry_after is not None:
            headers["Retry-After"] = str(max(1, decision.retry_after))
        raise ApiError(status, decision.message, code=f"{decision.kind}_exceeded", headers=headers)
    return decision


def rate_limit_headers(decision: Any) -> dict[str, str]:
    return dict(decision.headers) if decision is not None else {}


async def settle_and_record(decision: Any, outcome: Outcome, record: dict[str, Any]) -> None:
    """Charge the outcome's usage (or give the reservation back if no provider was called) and
    queue its usage record: one Redis round trip for both."""
    payload = serialise_usage(record)
    reservation = decision.reservation if decision is not None else None
    queued = False
    if reservation is not None and outcome.dispatched:
        queued = await admission_control.settle(
            reservation, outcome.usage.total_tokens, outcome.cost, usage_payload=payload
        )
    elif reservation is not None:
        queued = await admission_control.release(reservation, usage_payload=payload)
    if not queued:
        await enqueue_usage(payload)


async def report_usage_anomaly(request_id: str, caller: Caller, outcome: Outcome) -> None:
    """An upstream reported more than the request could produce: it was billed the bound, and
    operators hear about it (one open alert per provider)."""
    route = outcome.route
    provider = (route.served_provider if route else "") or "unknown"
    metrics.record_usage_anomaly(provider)
    condition = Condition(
        kind=AlertKind.USAGE_ANOMALY,
        key=f"usage_anomaly:{provider}",
        title=f"{provider} reported more tokens than a request could produce",
        detail=(
            f"Request {request_id} of organisation {caller.organization.pk}: reported "
            f"{outcome.reported.total_tokens} tokens, billed {outcome.usage.total_tokens}."
        ),
        action=(
            "The request was billed at its bound; the reported counts are on its usage record. "
            "Check the provider's usage reporting before trusting its counts again."
        ),
        context={"request_id": request_id, "provider": provider},
    )
    await sync_to_async(fire_alert)(condition)


def is_cacheable(call_endpoint: str, parsed: ParsedChat, opt_out: bool) -> bool:
    if opt_out:
        return False
    return response_cache.should_cache(parsed.body, endpoint=call_endpoint)


def _cache_key(org_id: int, endpoint: str, parsed: ParsedChat) -> str:
    return response_cache.build_cache_key(org_id, endpoint, parsed.body)


async def cache_get(
    org_id: int, endpoint: str, parsed: ParsedChat
) -> ChatResult | EmbeddingResult | None:
    cached = await response_cache.get_cached_response(_cache_key(org_id, endpoint, parsed))
    if cached is None:
        return None
    usage = Usage(**cached.usage)
    if "vectors" in cached.extra:
        return EmbeddingResult(
            vectors=cached.extra["vectors"],
            usage=usage,
            provider=cached.provider,
            model=cached.model,
        )
    return ChatResult(
        text=cached.text,
        finish_reason=cached.finish_reason,
        usage=usage,
        provider=cached.provider,
        model=cached.model,
        tool_calls=[ToolCall(**call) for call in cached.tool_calls],
    )


async def cache_put(
    org_id: int, endpoint: str, parsed: ParsedChat, result: ChatResult | EmbeddingResult
) -> None:
    usage = {
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cached_input_tokens": result.usage.cached_input_tokens,
    }
    if isinstance(result, EmbeddingResult):
        entry = response_cache.CachedResponse(
            usage=usage,
            provider=result.provider,
            model=result.model,
            extra={"vectors": result.vectors},
        )
    else:
        entry = response_cache.CachedResponse(
            text=result.text,
            tool_calls=[asdict(call) for call in result.tool_calls],
            finish_reason=result.finish_reason,
            usage=usage,
            provider=result.provider,
            model=result.model,
        )
    await response_cache.store_cached_response(_cache_key(org_id, endpoint, parsed), entry)
