"""The checks one admission runs: the rate windows of the plan and of the API key, and the
monthly meters (requests, tokens, spend), with the money in integer nano-dollars as the store
keeps it. billing/admission.py runs them in one atomic script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
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


REQUESTS, TOKENS, COST = "requests", "tokens", "cost"  # what a request adds to a check


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # "rate_limit", "quota", "budget"
    limit: int  # -1: unlimited, only metered
    counts: str  # REQUESTS (one per request), TOKENS or COST (nano-dollars)
    period: int = 0  # a window: its length in seconds
    key: str = ""  # a window's counter
    field: str = ""  # a meter's field in the month hash
    counts_requests: bool = False  # a window of requests (the rate-limit headers name one)


def amounts(checks: tuple[Check, ...], tokens: int, cost_nano: int) -> list[int]:
    """What this request adds to each check."""
    added = {REQUESTS: 1, TOKENS: tokens, COST: cost_nano}
    return [added[check.counts] for check in checks]


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


# An API key's overrides of its organisation's limits (ApiKey's attributes): its windows' and
# its budget.
KEY_LIMITS = (*(key_attr for *_, key_attr, _ in WINDOWS), "monthly_budget_usd")


def build_checks(
    org_id: int, key_id: int | None, limits: PlanLimits, overrides: Any
) -> tuple[tuple[Check, ...], tuple[Check, ...]]:
    """The rate windows and the monthly meters of an admission. They depend on these values
    only, so they are made once per set of values and kept: a changed plan or key override is
    a new set of values, with checks of its own from its first admission."""
    key_limits = None
    if key_id is not None:
        key_limits = tuple(getattr(overrides, name, None) for name in KEY_LIMITS)
    return _checks(org_id, key_id, limits, key_limits)


@lru_cache(maxsize=4096)
def _checks(
    org_id: int, key_id: int | None, limits: PlanLimits, key_limits: tuple | None
) -> tuple[tuple[Check, ...], tuple[Check, ...]]:
    overrides = dict(zip(KEY_LIMITS, key_limits or (), strict=False))
    prefix, plan = key_prefix(org_id), limits.plan_name
    windows = []
    for label, seconds, short, plan_attr, key_attr, counts_tokens in WINDOWS:
        counts = TOKENS if counts_tokens else REQUESTS
        scopes = [("org", getattr(limits, plan_attr), f"{label} of the {plan} plan")]
        if key_id is not None:
            scopes.append((f"k{key_id}", overrides[key_attr], f"{label} of this API key"))
        for scope, limit, name in scopes:
            if limit is not None:
                windows.append(
                    Check(name, "rate_limit", int(limit), counts, period=seconds,
                           key=f"{prefix}rl:{scope}:{short}", counts_requests=not counts_tokens)
                )  # fmt: skip
    blocks = limits.overage == "block"

    def cap(value: int | None) -> int:
        return -1 if value is None or not blocks else int(value)

    def budget(value: Decimal | None) -> int:
        return -1 if value is None else to_nano(Decimal(value))

    meters = [
        Check(f"monthly requests of the {plan} plan", "quota", cap(limits.monthly_requests),
               REQUESTS, field="req"),
        Check(f"monthly tokens of the {plan} plan", "quota", cap(limits.monthly_tokens),
               TOKENS, field="tok"),
        Check("monthly budget of the organisation", "budget", budget(limits.monthly_budget_usd),
               COST, field="usd"),
    ]  # fmt: skip
    if key_id is not None:
        meters.append(
            Check("monthly budget of this API key", "budget",
                   budget(overrides["monthly_budget_usd"]), COST, field=f"k:{key_id}:usd")
        )  # fmt: skip
    return tuple(windows), tuple(meters)
