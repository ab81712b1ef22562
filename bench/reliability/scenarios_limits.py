"""Rate limits across both processes, at a window boundary, and quota and spend races."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import ledger
from load import chat, chat_body, p99_ms, statuses
from matrix import Context, count, fives, scenario
from report import Row

RPM = 60


def accepted(outcomes) -> int:
    return count(outcomes, lambda o: o.status == 200)


async def spread(ctx: Context, tenant: str, total: int, clients: int, tag: str, **kwargs):
    """`total` requests, alternating between the two gateways, at most `clients` in flight."""
    gate = asyncio.Semaphore(clients)

    async def one(index: int):
        async with gate:
            return await chat(ctx.client, ctx.url(index % 2), ctx.key(tenant), tag, **kwargs)

    return list(await asyncio.gather(*(one(i) for i in range(total))))


@scenario(
    "rate limit, two processes",
    "limits",
    ci=True,
    tenants={"rl": {"key": {"rate_limit_per_minute": RPM}}},
)
async def rate_limit_two_processes(ctx: Context) -> Row:
    outcomes = await spread(ctx, "rl", 150, 20, "rl")
    got, rows = accepted(outcomes), ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "rate limit, two processes",
        "limits",
        f"{got} accepted of 150 sent for a {RPM}/min key (two processes); "
        f"{fives(outcomes)} 5xx; rows lost {rows['lost']}, duplicated {rows['duplicated']}",
        f"accepted = {RPM} (±10%, never above); 0 5xx; 0 lost",
        0.9 * RPM <= got <= RPM
        and not fives(outcomes)
        and not rows["lost"]
        and not rows["duplicated"],
        {"accepted": got, "limit": RPM, "statuses": statuses(outcomes), **rows},
    )


@scenario(
    "rate limit, window boundary",
    "limits",
    tenants={"rlb": {"key": {"rate_limit_per_minute": RPM}}},
)
async def rate_limit_boundary(ctx: Context) -> Row:
    """Two bursts under a minute apart, on each side of a minute boundary."""
    first = await spread(ctx, "rlb", 80, 20, "rlb")
    first_at = time.time()
    now = datetime.now(UTC)
    to_boundary = 60 - now.second - now.microsecond / 1e6 + 0.5
    await asyncio.sleep(to_boundary)
    second = await spread(ctx, "rlb", 80, 20, "rlb")
    span = time.time() - first_at
    got = accepted(first) + accepted(second)
    return Row(
        "rate limit, window boundary",
        "limits",
        f"{got} accepted in {span:.0f} s for a {RPM}/min key ({accepted(first)} before the "
        f"minute boundary, {accepted(second)} after)",
        f"≤ {RPM} in any 60 s (no 2× burst at a boundary)",
        got <= RPM,
        {
            "accepted": got,
            "limit": RPM,
            "span_s": round(span, 1),
            "before": accepted(first),
            "after": accepted(second),
        },
    )


@scenario(
    "quota race, 50 clients",
    "limits",
    ci=True,
    tenants={"quota": {"plan": {"monthly_requests": 30}}},
)
async def quota_race(ctx: Context) -> Row:
    outcomes = await spread(ctx, "quota", 100, 50, "quota")
    got, rows = accepted(outcomes), ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "quota race, 50 clients",
        "limits",
        f"{got} accepted of 100 for a 30-request monthly quota (50 concurrent clients); "
        f"{fives(outcomes)} 5xx; rows lost {rows['lost']}, duplicated {rows['duplicated']}",
        "accepted = 30; 0 5xx; 0 lost",
        got == 30 and not fives(outcomes) and not rows["lost"] and not rows["duplicated"],
        {
            "accepted": got,
            "limit": 30,
            "statuses": statuses(outcomes),
            "p99_ms": p99_ms(outcomes),
            **rows,
        },
    )


@scenario("spend race, 50 clients", "limits", tenants={"spend": {"plan": {"monthly_tokens": 2000}}})
async def spend_race(ctx: Context) -> Row:
    body = chat_body(max_tokens=100)
    outcomes = await spread(ctx, "spend", 150, 50, "spend", body=body)
    rows = ledger.audit(ctx.pg_url, outcomes)
    tokens = ledger.query(
        ctx.pg_url,
        "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM analytics_usagerecord "
        "WHERE organization_id = %s",
        (ctx.stack.tenants["spend"]["org_id"],),
    )[0][0]
    return Row(
        "spend race, 50 clients",
        "limits",
        f"{tokens} tokens recorded for a 2,000-token monthly quota ({accepted(outcomes)} of 150 "
        f"accepted, 50 concurrent); {fives(outcomes)} 5xx; rows lost {rows['lost']}",
        "tokens ≤ 2,000; 0 5xx; 0 lost",
        tokens <= 2000 and not fives(outcomes) and not rows["lost"] and not rows["duplicated"],
        {
            "tokens": tokens,
            "limit": 2000,
            "accepted": accepted(outcomes),
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("revoked key", "limits", ci=True, tenants={"revoke": {}})
async def revoked_key(ctx: Context) -> Row:
    """Revoke through the management API once both processes have the key cached; then measure
    how long each process keeps accepting it."""
    tenant = ctx.stack.tenants["revoke"]
    warm = await spread(ctx, "revoke", 6, 2, "revoke")
    login = await ctx.client.post(
        f"{ctx.url(0)}/api/auth/login",
        json={"email": tenant["email"], "password": tenant["password"]},
    )
    token = login.json()["token"]
    revoked = await ctx.client.delete(
        f"{ctx.url(1)}/api/auth/api-keys/{tenant['key_id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    revoked_at, refused_at, after = time.monotonic(), {}, []
    while len(refused_at) < 2 and time.monotonic() - revoked_at < 45:
        for index in (0, 1):
            outcome = await chat(ctx.client, ctx.url(index), tenant["key"], "revoke")
            after.append(outcome)
            if outcome.status == 401:
                refused_at.setdefault(index, outcome.started - revoked_at)
        await asyncio.sleep(0.1)
    slowest = max(refused_at.values()) if len(refused_at) == 2 else None
    accepted_after = accepted(after)
    return Row(
        "revoked key",
        "limits",
        f"revoked on one process (answered {revoked.status_code}): refused by both after "
        f"{slowest if slowest is None else round(slowest, 1)} s; {accepted_after} requests "
        f"accepted after the revocation",
        "refused on every process within 1 s",
        accepted(warm) == 6 and slowest is not None and slowest <= 1.0,
        {
            "revoke_status": revoked.status_code,
            "refused_after_s": refused_at,
            "accepted_after": accepted_after,
        },
    )
