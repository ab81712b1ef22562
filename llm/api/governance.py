"""The pipeline's link to admission control, the response cache and usage recording.

One module so the request path reads as steps while the policies live in their apps:
rate limits and quota reservations in billing, the response cache here in llm/api, usage records
in analytics.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing import admission as admission_control
from llm.api import response_cache
from llm.api.auth import Caller
from llm.api.errors import ApiError
from llm.api.parsing import ParsedChat
from llm.types import ChatResult, Usage

async def admit(caller: Caller, tokens: int, cost: Decimal) -> Any:
    """Check every limit and reserve the worst case in one step; 429 (or 402) when refused."""
    decision = await admission_control.admit(
        caller.organization.pk,
        caller.key.pk,
        caller.limits,
        caller.key,
        tokens,
        cost,
        load_usage=load_month_usage,
    )
    if not decision.admitted:
        status = 402 if decision.kind == "budget" else 429
        headers = dict(decision.headers)
        if decision.retry_after is not None:
            headers["Retry-After"] = str(max(1, decision.retry_after))
        raise ApiError(status, decision.message, code=f"{decision.kind}_exceeded", headers=headers)
    return decision


def rate_limit_headers(decision: Any) -> dict[str, str]:
    return dict(decision.headers) if decision is not None else {}


async def settle(decision: Any, usage: Usage, cost: Decimal, *, dispatched: bool) -> None:
    """Charge the actual usage, or give the reservation back if no provider was called."""
    if decision is None or decision.reservation is None:
        return
    if dispatched:
        await admission_control.settle(decision.reservation, usage.total_tokens, cost)
    else:
        await admission_control.release(decision.reservation)


def is_cacheable(parsed: ParsedChat, opt_out: bool) -> bool:
    return response_cache.should_cache(parsed, opt_out=opt_out)


async def cache_get(org_id: int, parsed: ParsedChat) -> ChatResult | None:
    return await response_cache.get(org_id, parsed)


async def cache_put(org_id: int, parsed: ParsedChat, result: ChatResult) -> None:
    await response_cache.put(org_id, parsed, result)


async def record(values: dict[str, Any]) -> None:
    from analytics.recording import enqueue_usage

    await enqueue_usage(values)


async def load_month_usage(org_id: int, key_id: int | None, month_start) -> Any:
    from analytics.month_usage import month_usage

    return await month_usage(org_id, key_id, month_start)
