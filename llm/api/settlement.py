"""Settling a call: the one writer of its quota settlement, usage record, log line and metrics.

settle(call, outcome) runs in a task the process owns, so neither a client hanging up nor the
response finishing can cancel it, and a graceful stop drains it (drain_background). A call that
ended while a provider was still answering (deadline, hang-up) waits here a little for the usage
the provider will bill.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

from llm.api import governance
from llm.api.observe import observe_call, redacted_prompt
from llm.outcome import BillingReason, Ending, Outcome, outcome
from llm.types import TOKEN_CLASSES, Usage

if TYPE_CHECKING:
    from llm.api.call import Call

logger = logging.getLogger(__name__)
_background: set[asyncio.Task] = set()
_stopping = False  # set when a graceful stop begins: calls it cuts end as "stopping"
# Ways out after which a provider may still answer (and bill) the attempt in flight.
LATE_ENDINGS = frozenset({Ending.DEADLINE, Ending.CLIENT_GONE, Ending.STOPPING})


def settle(call: Call, result: Outcome) -> None:
    """Settle the call once: quota, usage record, log line and metrics, in a task the process
    owns (a cancelled request cannot cancel it; drain_background waits for it at shutdown)."""
    if call.settled or call.caller is None:
        return
    call.settled = True
    task = asyncio.get_running_loop().create_task(_settle(call, result))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _settle(call: Call, result: Outcome) -> None:
    # The answer is written at the end of the loop turn the view returned in (the worker joins a
    # turn's writes): yield once so that write goes before this task's work, not after it.
    await asyncio.sleep(0)
    try:
        result = await with_late_answer(result)
        observe_call(call, result)
        await governance.settle_and_record(call.admission, result, usage_record(call, result))
        if result.is_anomalous:
            await governance.report_usage_anomaly(call.request_id, call.caller, result)
    except Exception:
        logger.exception("Settling %s failed", call.request_id)


async def with_late_answer(result: Outcome) -> Outcome:
    """The deadline passed (or the client left) while a provider was still answering. Wait for it
    up to GATEWAY_LATE_ANSWER_GRACE_SECONDS: if it answers, bill what it reports; if not, bill
    the prompt, estimated. An attempt that failed bills nothing, as any failed attempt."""
    route = result.route
    if result.ending not in LATE_ENDINGS or route is None or route.in_flight is None:
        return result
    in_flight, pending, extra = route.in_flight, route.pending, None
    if pending is not None:
        try:
            _, extra = await asyncio.wait_for(
                asyncio.shield(pending), settings.GATEWAY_LATE_ANSWER_GRACE_SECONDS
            )
        except TimeoutError:
            pending.cancel()
        except Exception:
            return result  # the provider answered with an error: not billed
    late = extra is not None
    if extra is None:
        extra = in_flight.estimated_charge()
    reason = result.billing_reason
    if result.ending is Ending.DEADLINE:
        reason = BillingReason.DEADLINE_LATE_ANSWER if late else BillingReason.DEADLINE_ESTIMATED
    return outcome(
        result.ending,
        reason,
        status=result.status,
        error_class=result.error_class,
        route=route,
        charges=(*result.charges, extra),
    )


async def drain_background() -> None:
    """Wait for every pending settle (graceful shutdown); calls cut meanwhile say "stopping"."""
    global _stopping
    _stopping = True
    try:
        while _background:
            await asyncio.gather(*list(_background), return_exceptions=True)
    finally:
        _stopping = False  # drained: a process that serves again starts afresh


def is_stopping() -> bool:
    return _stopping


def usage_record(call: Call, result: Outcome) -> dict[str, Any]:
    """The usage record's column values, all from the outcome."""
    caller, route, usage = call.caller, result.route, result.usage
    reported = result.reported if result.is_anomalous else None
    return {
        "organization_id": caller.organization.pk,
        "api_key_id": caller.key.pk,
        "user_id": caller.key.created_by_id,
        "request_id": call.request_id,
        "client_request_id": call.client_request_id,
        "created_at": call.created_at,  # an aware datetime: written as ISO 8601 when queued
        "endpoint": call.endpoint,
        "requested_model": call.parsed.model if call.parsed else "",
        "provider": (route.served_provider or "") if route else "",
        "upstream_model": (route.upstream_model or route.served_model or "") if route else "",
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "tool_use_prompt_tokens": usage.tool_use_prompt_tokens,
        "billed_input_units": usage.billed_input_units,
        "billed_output_units": usage.billed_output_units,
        "service_tier": usage.service_tier,
        "tokens_estimated": usage.estimated,
        "input_estimated": usage.input_estimated,
        "output_estimated": usage.output_estimated,
        "usage_anomaly": result.is_anomalous,
        "reported_usage": reported_counts(reported) if reported is not None else None,
        "cost": str(result.cost),
        "price_version": result.price_version,
        "latency_ms": round(call.elapsed_ms),
        "ttft_ms": round(result.ttft_ms) if result.ttft_ms is not None else None,
        "upstream_ms": round(result.upstream_ms),
        "status": result.status,
        "error_class": result.error_class,
        "outcome": result.ending.value,
        "billing_reason": result.billing_reason.value,
        "attempts": len(route.providers_tried()) if route else 0,
        "cache_hit": result.cache_hit,
        "stream": call.stream,
        "client_disconnected": result.ending in (Ending.CLIENT_GONE, Ending.STOPPING),
        "prompt_text": logged_prompt(call),
    }


def reported_counts(usage: Usage) -> dict[str, int]:
    """The counts as the upstream reported them (kept when they were bounded)."""
    counts = {name: getattr(usage, name) for name in TOKEN_CLASSES}
    for name in ("billed_input_units", "billed_output_units"):
        if getattr(usage, name) is not None:
            counts[name] = getattr(usage, name)
    return counts


def logged_prompt(call: Call) -> str | None:
    """The redacted prompt, for organisations that turned prompt logging on (and not for a
    request that asked us to keep nothing, Cache-Control: no-store)."""
    if call.no_store or call.parsed is None or not call.caller.organization.prompt_logging:
        return None
    return redacted_prompt(call.parsed.request.messages)
