"""The checks one admission runs: the rate windows of the plan and of the API key, and the
monthly meters (requests, tokens, spend), with the money in integer nano-dollars as the store
keeps it. billing/admission.py runs them in one atomic script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from billing.limits import PlanLimits
from billing.periods import period_containing

NANO = Decimal("0.000000001")
WINDOWS = (  # label, seconds, short name, plan attribute, key override attribute, counts tokens
    ("requests per minute", 60, "rpm", "requests_per_minute", "rate_limit_per_minute", False),
    ("requests per hour", 3600, "rph", "requests_per_hour", "rate_limit_per_hour", False),
    ("requests per day", 86400, "rpd", "requests_per_day", "rate_limit_per_day", False),
    ("tokens per minute", 60, "tpm", "tokens_per_minute", "tokens_per_minute", True),
)


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # "rate_limit", "quota", "budget"
    limit: int  # -1: unlimited, only metered
    amount: int
    ends_at: float = 0.0  # a meter: when it starts again (next month)
    period: int = 0  # a window: its length in seconds
    key: str = ""  # a window's counter
    field: str = ""  # a meter's field in the month hash
    counts_requests: bool = False


def to_nano(amount: Decimal) -> int:
    """Dollars to whole nano-dollars, rounding up (a reservation may never be too small)."""
    return int((amount / NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nano(value: int) -> Decimal:
    return Decimal(value) * NANO


def month_bounds(now: float) -> tuple[str, datetime, float]:
    """The billing period holding `now` (billing.periods: the calendar month, UTC)."""
    global _last_month
    name, start, start_ts, end_ts = _last_month
    if not start_ts <= now < end_ts:  # every admission asks: worked out once a month
        start, end = period_containing(datetime.fromtimestamp(now, UTC))
        name, start_ts, end_ts = start.strftime("%Y%m"), start.timestamp(), end.timestamp()
        _last_month = (name, start, start_ts, end_ts)
    return name, start, end_ts


_last_month: tuple[str, datetime, float, float] = ("", datetime.min.replace(tzinfo=UTC), 0.0, 0.0)


def key_prefix(org_id: int) -> str:
    return f"gw:{{o:{org_id}}}:"


def build_checks(
    org_id: int,
    key_id: int | None,
    limits: PlanLimits,
    overrides: Any,
    tokens: int,
    cost_nano: int,
    month_end: float,
) -> tuple[list[Check], list[Check]]:
    prefix, plan = key_prefix(org_id), limits.plan_name
    windows = []
    for label, seconds, short, plan_attr, key_attr, counts_tokens in WINDOWS:
        amount = tokens if counts_tokens else 1
        scopes = [("org", getattr(limits, plan_attr), f"{label} of the {plan} plan")]
        if key_id is not None:
            scopes.append(
                (f"k{key_id}", getattr(overrides, key_attr, None), f"{label} of this API key")
            )
        for scope, limit, name in scopes:
            if limit is not None:
                windows.append(
                    Check(name, "rate_limit", int(limit), amount, period=seconds,
                           key=f"{prefix}rl:{scope}:{short}", counts_requests=not counts_tokens)
                )  # fmt: skip
    blocks = limits.overage == "block"

    def cap(value: int | None) -> int:
        return -1 if value is None or not blocks else int(value)

    def budget(value: Decimal | None) -> int:
        return -1 if value is None else to_nano(Decimal(value))

    meters = [
        Check(f"monthly requests of the {plan} plan", "quota", cap(limits.monthly_requests),
               1, month_end, field="req"),
        Check(f"monthly tokens of the {plan} plan", "quota", cap(limits.monthly_tokens),
               tokens, month_end, field="tok"),
        Check("monthly budget of the organisation", "budget", budget(limits.monthly_budget_usd),
               cost_nano, month_end, field="usd"),
    ]  # fmt: skip
    if key_id is not None:
        key_budget = budget(getattr(overrides, "monthly_budget_usd", None))
        meters.append(
            Check("monthly budget of this API key", "budget", key_budget, cost_nano, month_end,
                   field=f"k:{key_id}:usd")
        )  # fmt: skip
    return windows, meters
