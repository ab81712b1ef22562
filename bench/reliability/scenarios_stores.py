"""Redis stopped, frozen and flushed; PostgreSQL restarted, crashed and out of connections."""

from __future__ import annotations

import asyncio
import contextlib
import time

import ledger
import psycopg
from load import chat, loop_for, p99_ms, statuses
from matrix import Context, after, between, count, fives, recovery_seconds, scenario
from report import Row

RPM = 60


def failures(outcomes) -> int:
    """5xx answers plus requests that got no answer at all."""
    return count(outcomes, lambda o: o.is_5xx or o.status is None)


def clean(rows: dict) -> bool:
    return not rows["lost"] and not rows["duplicated"]


def ledger_text(rows: dict) -> str:
    return (
        f"rows lost {rows['lost']}, duplicated {rows['duplicated']} (of {rows['owed_rows']} "
        f"owed; waited {rows['rows_waited_s']} s for them)"
    )


async def load_with_fault(ctx, tenants, seconds, clients, tag, fault_at, fault, heal_at, heal):
    """Clients loop over both gateways while the fault starts and ends on schedule."""

    async def call(index: int):
        tenant = tenants[index % len(tenants)]
        return await chat(ctx.client, ctx.url(index % 2), ctx.key(tenant), tag, timeout=20)

    t0 = time.monotonic()
    load = asyncio.create_task(loop_for(seconds, clients, call))
    began = await after(fault_at, fault)
    ended = await after(max(heal_at - (time.monotonic() - t0), 0), heal)
    outcomes = await load
    return outcomes, began, ended


@scenario("Redis stopped", "redis", tenants={"redis_down": {"key": {"rate_limit_per_minute": RPM}}})
async def redis_stopped(ctx: Context) -> Row:
    redis = ctx.stack.redis
    outcomes, began, ended = await load_with_fault(
        ctx, ["redis_down"], 30, 10, "redisdown", 5, redis.stop, 17, redis.start
    )
    during = between(outcomes, began, ended)
    got = count(during, lambda o: o.status == 200)
    rows = ledger.audit(ctx.pg_url, outcomes)
    recover = recovery_seconds(outcomes, ended)
    return Row(
        "Redis stopped",
        "redis",
        f"12 s down: {got} accepted while down for a {RPM}/min key; {fives(outcomes)} 5xx, "
        f"p99 {p99_ms(during)} ms during; {ledger_text(rows)}; recovered in {recover} s",
        f"accepted while down ≤ {RPM} (per-process cap); 0 5xx; 0 lost; recovers by itself",
        got <= RPM and not failures(outcomes) and clean(rows) and recover is not None,
        {
            "accepted_while_down": got,
            "limit": RPM,
            "5xx": fives(outcomes),
            "p99_ms_during": p99_ms(during),
            "recover_s": recover,
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("Redis frozen 20 s", "redis", ci=True, tenants={"bulk": {}})
async def redis_frozen(ctx: Context) -> Row:
    redis = ctx.stack.redis
    outcomes, began, ended = await load_with_fault(
        ctx, ["bulk"], 32, 10, "redisfreeze", 4, redis.freeze, 24, redis.thaw
    )
    during = between(outcomes, began, ended)
    rows = ledger.audit(ctx.pg_url, outcomes)
    recover = recovery_seconds(outcomes, ended)
    bad = failures(outcomes)
    return Row(
        "Redis frozen 20 s",
        "redis",
        f"SIGSTOP 20 s: {bad} errors of {len(outcomes)}; p99 {p99_ms(during)} ms during; "
        f"{ledger_text(rows)}; recovered in {recover} s",
        "0 errors, 0 lost rows",
        not bad and clean(rows) and recover is not None,
        {
            "errors": bad,
            "p99_ms_during": p99_ms(during),
            "recover_s": recover,
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("Redis flushed", "redis", tenants={"flushq": {"plan": {"monthly_requests": 40}}})
async def redis_flushed(ctx: Context) -> Row:
    """FLUSHALL under load; the 40-request quota must be rebuilt from the database afterwards."""
    key = ctx.key("flushq")

    async def quota_calls(total: int):
        return await asyncio.gather(
            *(chat(ctx.client, ctx.url(i % 2), key, "flushq") for i in range(total))
        )

    before = list(await quota_calls(20))
    ledger.wait_for_rows(ctx.pg_url, [o.request_id for o in before], 20, timeout=20)
    outcomes, _, flushed_at = await load_with_fault(
        ctx, ["bulk"], 10, 10, "flush", 0, lambda: None, 4, lambda: ctx.stack.redis.cli("FLUSHALL")
    )
    after_flush = list(await quota_calls(60))
    got = count(before + after_flush, lambda o: o.status == 200)
    rows = ledger.audit(ctx.pg_url, outcomes + before + after_flush)
    return Row(
        "Redis flushed",
        "redis",
        f"FLUSHALL under load: {got} accepted in all for a 40-request quota (20 before); "
        f"{fives(outcomes + after_flush)} 5xx; {ledger_text(rows)}",
        "accepted = 40 (rebuilt from the database); 0 5xx; 0 lost",
        got == 40 and not fives(outcomes + after_flush) and clean(rows),
        {"accepted": got, "limit": 40, "statuses": statuses(outcomes + after_flush), **rows},
    )


async def postgres_fault(ctx: Context, name: str, mode: str, down_s: float) -> Row:
    """Load over two organisations through a database outage and 40 s after it. The gateways
    are restarted afterwards: connections left dead by the fault would otherwise answer 500 in
    the next scenario's row, which measures something else."""
    pg = ctx.stack.postgres

    def stop() -> None:
        pg.stop(mode)

    def start() -> None:
        pg.start()

    outcomes, began, ended = await load_with_fault(
        ctx, ["pga", "pgb"], 45, 10, f"pg{mode}", 5, stop, 5 + down_s, start
    )
    during = between(outcomes, began, ended + 5)
    later = between(outcomes, ended + 5, float("inf"))
    five_hundreds = count(outcomes, lambda o: o.status == 500)
    rows = ledger.audit(ctx.pg_url, outcomes)
    recover = recovery_seconds(outcomes, ended)
    await asyncio.to_thread(ctx.stack.restart_gateways)  # see the docstring
    return Row(
        name,
        "postgres",
        f"{down_s:.0f} s down: {fives(during)} 5xx while down and 5 s after, {fives(later)} "
        f"5xx later ({len(later)} requests, two organisations), {five_hundreds} of all were "
        f"500; p99 {p99_ms(during)} ms during; {ledger_text(rows)}; recovered in {recover} s",
        "no 500 (503 + Retry-After while down); 0 5xx once back; 0 lost",
        not five_hundreds and not fives(later) and clean(rows) and recover is not None,
        {
            "5xx_during": fives(during),
            "500": five_hundreds,
            "5xx_after": fives(later),
            "p99_ms_during": p99_ms(during),
            "recover_s": recover,
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("PostgreSQL restarted", "postgres", tenants={"pga": {}, "pgb": {}})
async def postgres_restarted(ctx: Context) -> Row:
    return await postgres_fault(ctx, "PostgreSQL restarted", "fast", 3)


@scenario("PostgreSQL crashed", "postgres", ci=True)
async def postgres_crashed(ctx: Context) -> Row:
    return await postgres_fault(ctx, "PostgreSQL crashed", "immediate", 5)


@scenario("PostgreSQL connections exhausted", "postgres")
async def connections_exhausted(ctx: Context) -> Row:
    held: list[psycopg.Connection] = []

    def exhaust() -> None:
        for _ in range(200):
            try:
                held.append(psycopg.connect(ctx.pg_url, connect_timeout=3))
            except psycopg.OperationalError:
                return

    def release() -> None:
        while held:
            with contextlib.suppress(psycopg.Error):
                held.pop().close()

    try:
        outcomes, began, ended = await load_with_fault(
            ctx, ["pga", "pgb"], 30, 10, "pgconn", 3, exhaust, 15, release
        )
    finally:
        release()
    during = between(outcomes, began, ended)
    five_hundreds = count(outcomes, lambda o: o.status == 500)
    rows = ledger.audit(ctx.pg_url, outcomes)
    recover = recovery_seconds(outcomes, ended)
    await asyncio.to_thread(ctx.stack.restart_gateways)
    return Row(
        "PostgreSQL connections exhausted",
        "postgres",
        f"every connection slot held ~12 s: {fives(during)} 5xx during ({five_hundreds} were 500), "
        f"p99 {p99_ms(during)} ms; {ledger_text(rows)}; recovered in {recover} s",
        "no 500 (503 + Retry-After); 0 lost; recovers by itself",
        not five_hundreds and clean(rows) and recover is not None,
        {
            "5xx_during": fives(during),
            "500": five_hundreds,
            "p99_ms_during": p99_ms(during),
            "recover_s": recover,
            "statuses": statuses(outcomes),
            **rows,
        },
    )
