"""Process faults: clients that hang up, a Celery worker killed mid-task, SIGTERM with streams in
flight, and `kill -9` of a gateway mid-stream."""

from __future__ import annotations

import asyncio
import signal

import ledger
from load import chat, loop_for, statuses
from matrix import Context, after, count, fives, scenario
from report import Row

SLOW_STREAM = {"mode": "ok", "chunk_delay": 0.3}  # about 3.5 s per stream


def clean(rows: dict) -> bool:
    return not rows["lost"] and not rows["duplicated"]


def ledger_text(rows: dict) -> str:
    return (
        f"rows lost {rows['lost']}, duplicated {rows['duplicated']} (of {rows['owed_rows']} "
        f"owed; waited {rows['rows_waited_s']} s for them)"
    )


async def streams(ctx: Context, total: int, tag: str, gateway: int | None = None, **kwargs):
    async def one(index: int):
        url = ctx.url(index % 2 if gateway is None else gateway)
        return await chat(ctx.client, url, ctx.key("bulk"), tag, stream=True, **kwargs)

    return list(await asyncio.gather(*(one(i) for i in range(total))))


@scenario("client disconnects", "processes")
async def client_disconnects(ctx: Context) -> Row:
    ctx.stack.fault(primary=SLOW_STREAM)
    outcomes = await streams(ctx, 20, "hangup", disconnect_after_chunks=2)
    rows = ledger.audit(ctx.pg_url, outcomes)
    ids = [o.request_id for o in outcomes]
    flagged = ledger.query(
        ctx.pg_url,
        "SELECT count(*) FROM analytics_usagerecord WHERE client_request_id = ANY(%s) "
        "AND client_disconnected",
        (ids,),
    )[0][0]
    return Row(
        "client disconnects",
        "processes",
        f"20 clients hang up after 2 chunks: {flagged}/20 rows marked disconnected; "
        f"{ledger_text(rows)}",
        "20 rows, each marked client_disconnected; 0 lost",
        flagged == 20 and clean(rows),
        {"flagged": flagged, "statuses": statuses(outcomes), **rows},
    )


@scenario("Celery worker killed mid-task", "processes")
async def worker_killed(ctx: Context) -> Row:
    stack = ctx.stack

    def kill_and_restart() -> None:
        stack.worker.stop(signal.SIGKILL, grace=2)
        stack.start_worker()

    async def call(index: int):
        return await chat(ctx.client, ctx.url(index % 2), ctx.key("bulk"), "workerkill")

    load = asyncio.create_task(loop_for(20, 10, call))
    for at in (4, 5, 5):  # three kills, 4, 9 and 14 s in: one lands during a flush
        await after(at, kill_and_restart)
    outcomes = await load
    rows = ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "Celery worker killed mid-task",
        "processes",
        f"worker kill -9 three times under load: {ledger_text(rows)}; {fives(outcomes)} 5xx",
        "0 lost, 0 duplicated",
        clean(rows) and not fives(outcomes),
        {"statuses": statuses(outcomes), **rows},
    )


@scenario("SIGTERM with streams in flight", "processes", ci=True)
async def sigterm_streams(ctx: Context) -> Row:
    stack = ctx.stack
    stack.fault(primary=SLOW_STREAM)
    load = asyncio.create_task(streams(ctx, 20, "sigterm", gateway=0))
    await after(1.0, lambda: stack.gateways[0].send_signal(signal.SIGTERM))
    outcomes = await load
    await asyncio.to_thread(stack.gateways[0].wait, 40)
    await asyncio.to_thread(stack.start_gateway, 0)
    finished = count(outcomes, lambda o: o.done and not o.error)
    rows = ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "SIGTERM with streams in flight",
        "processes",
        f"SIGTERM 1 s into 20 streams: {finished}/20 finished; {ledger_text(rows)}",
        "20/20 finished and recorded",
        finished == 20 and rows["rows"] == 20 and clean(rows),
        {"finished": finished, "statuses": statuses(outcomes), **rows},
    )


@scenario("kill -9 mid-stream", "processes")
async def kill9_midstream(ctx: Context) -> Row:
    stack = ctx.stack
    stack.fault(primary=SLOW_STREAM)
    load = asyncio.create_task(streams(ctx, 10, "kill9", gateway=0))
    await after(1.5, lambda: stack.gateways[0].send_signal(signal.SIGKILL, group=True))
    outcomes = await load
    await asyncio.to_thread(stack.gateways[0].wait, 10)
    await asyncio.to_thread(stack.start_gateway, 0)
    started = count(outcomes, lambda o: o.status == 200)
    rows = ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "kill -9 mid-stream",
        "processes",
        f"kill -9 1.5 s into 10 streams ({started} had started): {ledger_text(rows)}",
        "every started stream leaves one usage row (0 lost)",
        clean(rows),
        {"started": started, "statuses": statuses(outcomes), **rows},
    )
