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

KEY_OVERRIDES = (
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "rate_limit_per_day",
    "tokens_per_minute",
    "monthly_budget_usd",
)


async def admit(caller: Caller, tokens: int, cost: Decimal) -> Any:
    """Check every limit and reserve the worst case in one step; 429 (or 402) when refused."""
    key = caller.key
    decision = await admission_control.admit(
        caller.organization.pk,
        key.pk,
        caller.limits,
        {name: getattr(key, name) for name in KEY_OVERRIDES},
        tokens,
        cost,
    )
    if not decision.admitted:
        status = 402 if decision.refusal == "budget" else 429
        headers = rate_limit_headers(decision)
        if decision.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(decision.retry_after + 0.999)))
        raise ApiError(
            status,
            f"Limit reached: {decision.limit_name}.",
            code=f"{decision.refusal}_exceeded",
            headers=headers,
        )
    return decision


def rate_limit_headers(decision: Any) -> dict[str, str]:
    if decision is None or decision.limit is None:
        return {}
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(max(decision.remaining, 0)),
        "X-RateLimit-Reset": str(int(decision.reset)),
    }


async def settle(decision: Any, usage: Usage, cost: Decimal) -> None:
    if decision is None or decision.reservation is None:
        return
    await admission_control.settle(decision.reservation, usage.total_tokens, cost)


def is_cacheable(parsed: ParsedChat, opt_out: bool) -> bool:
    return response_cache.should_cache(parsed, opt_out=opt_out)


async def cache_get(org_id: int, parsed: ParsedChat) -> ChatResult | None:
    return await response_cache.get(org_id, parsed)


async def cache_put(org_id: int, parsed: ParsedChat, result: ChatResult) -> None:
    await response_cache.put(org_id, parsed, result)


async def record(values: dict[str, Any]) -> None:
    from analytics.recording import enqueue_usage

    await enqueue_usage(values)
