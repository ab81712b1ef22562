"""Upstream faults: 5xx, 429 with Retry-After, silence, a stalled stream, truncation, huge
bodies and absurd usage numbers. The primary provider misbehaves; its declared fallback is fine."""

from __future__ import annotations

import asyncio
import threading
import time

import ledger
from catalogue import model_for
from load import chat, loop_for, p99_ms, statuses
from matrix import Context, count, fives, scenario
from processes import rss_mb
from report import Row
from stack import FIRST_BYTE_S, IDLE_S

HUGE_MB = 60


def statuses_by_provider(outcomes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        name = outcome.headers.get("x-gateway-provider", "none")
        counts[name] = counts.get(name, 0) + 1
    return counts


def clean(rows: dict) -> bool:
    return not rows["lost"] and not rows["duplicated"]


def ledger_text(rows: dict) -> str:
    return f"rows lost {rows['lost']}, duplicated {rows['duplicated']}"


async def requests(ctx: Context, fault: str, total: int, clients: int, **kwargs):
    """Requests to the model of `fault`'s own provider (see catalogue.py)."""
    gate = asyncio.Semaphore(clients)
    model, tag = model_for(f"faulty_{fault}"), f"up{fault}"

    async def one(index: int):
        async with gate:
            return await chat(
                ctx.client, ctx.url(index % 2), ctx.key("bulk"), tag, model=model, **kwargs
            )

    return list(await asyncio.gather(*(one(i) for i in range(total))))


@scenario("upstream 5xx", "upstream", ci=True)
async def upstream_5xx(ctx: Context) -> Row:
    ctx.stack.fault(faulty_5xx={"mode": "5xx"})
    outcomes = await requests(ctx, "5xx", 40, 10)
    ok = count(outcomes, lambda o: o.status == 200)
    rows = ledger.audit(ctx.pg_url, outcomes)
    tried = len(ctx.stack.upstream_calls()["faulty_5xx"])
    return Row(
        "upstream 5xx",
        "upstream",
        f"primary answers 500 ({tried} calls): {ok}/40 served by the fallback; "
        f"{fives(outcomes)} 5xx; "
        f"p99 {p99_ms(outcomes)} ms; {ledger_text(rows)}",
        "40/40 served by the fallback; 0 lost",
        ok == 40 and clean(rows),
        {
            "ok": ok,
            "5xx": fives(outcomes),
            "p99_ms": p99_ms(outcomes),
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("upstream 429 Retry-After: 5", "upstream")
async def upstream_429(ctx: Context) -> Row:
    ctx.stack.fault(faulty_429={"mode": "429", "retry_after": 5})

    async def call(index: int):
        return await chat(
            ctx.client, ctx.url(index % 2), ctx.key("bulk"), "up429", model=model_for("faulty_429")
        )

    outcomes = await loop_for(8, 4, call)
    calls = ctx.stack.upstream_calls()["faulty_429"]
    first = min(calls) if calls else time.time()
    inside = sum(1 for t in calls if first < t < first + 5)
    ok = count(outcomes, lambda o: o.status == 200)
    return Row(
        "upstream 429 Retry-After: 5",
        "upstream",
        f"primary called {inside} more times within the 5 s after its first 429 (4 clients, "
        f"two processes); {ok}/{len(outcomes)} served; {fives(outcomes)} 5xx",
        "≤ 4 calls inside the Retry-After window (only those already in flight); 0 5xx",
        inside <= 4 and not fives(outcomes),
        {
            "primary_calls_in_window": inside,
            "primary_calls": len(calls),
            "ok": ok,
            "statuses": statuses(outcomes),
        },
    )


@scenario("upstream silence", "upstream")
async def upstream_silence(ctx: Context) -> Row:
    ctx.stack.fault(faulty_silence={"mode": "silence"})
    outcomes = await requests(ctx, "silence", 6, 6, timeout=40)
    ok = count(outcomes, lambda o: o.status == 200)
    rows = ledger.audit(ctx.pg_url, outcomes)
    p99 = p99_ms(outcomes)
    return Row(
        "upstream silence",
        "upstream",
        f"primary never answers: {ok}/6 served by the fallback, p99 {p99} ms (clients give up "
        f"at 40 s); {ledger_text(rows)}",
        f"6/6 served by the fallback after the {FIRST_BYTE_S} s first-byte timeout, "
        f"p99 < {FIRST_BYTE_S + 10} s",
        ok == 6 and p99 is not None and p99 < (FIRST_BYTE_S + 10) * 1000 and clean(rows),
        {"ok": ok, "p99_ms": p99, "statuses": statuses(outcomes), **rows},
    )


@scenario("upstream stalls mid-stream", "upstream")
async def upstream_stall(ctx: Context) -> Row:
    ctx.stack.fault(faulty_stall={"mode": "stall"})
    outcomes = await requests(ctx, "stall", 6, 6, stream=True, timeout=40)
    ended = count(outcomes, lambda o: o.error == "error_event")
    hung = count(outcomes, lambda o: o.error == "TimeoutError")
    rows = ledger.audit(ctx.pg_url, outcomes)
    p99 = p99_ms(outcomes)
    return Row(
        "upstream stalls mid-stream",
        "upstream",
        f"stream stalls after 3 chunks: {ended}/6 ended by the gateway, {hung} still open at "
        f"40 s; p99 {p99_ms(outcomes)} ms; {ledger_text(rows)}",
        f"6/6 end with a terminal error event after the {IDLE_S} s idle timeout "
        f"(p99 < {IDLE_S + 10} s); 0 lost",
        ended == 6 and p99 is not None and p99 < (IDLE_S + 10) * 1000 and clean(rows),
        {
            "ended": ended,
            "hung": hung,
            "p99_ms": p99_ms(outcomes),
            "statuses": statuses(outcomes),
            **rows,
        },
    )


@scenario("upstream truncation", "upstream")
async def upstream_truncation(ctx: Context) -> Row:
    # Chunks 0.2 s apart: the client has the first ones before the cut, so the gateway can no
    # longer fail over and must end the stream with an error.
    # (a provider of its own: the cut JSON bodies would open the circuit of the first).
    ctx.stack.fault(faulty_truncate={"mode": "truncate"})
    ctx.stack.fault(faulty_cut={"mode": "truncate", "chunk_delay": 0.2})
    plain = await requests(ctx, "truncate", 10, 10)
    streams = await requests(ctx, "cut", 10, 10, stream=True)
    outcomes = plain + streams
    five_hundreds = count(outcomes, lambda o: o.status == 500)
    # A cut stream relayed from the faulty provider and closed with [DONE] as if whole.
    complete = count(
        streams,
        lambda o: o.done and not o.error and o.headers.get("x-gateway-provider") == "faulty_cut",
    )
    flagged = count(streams, lambda o: o.error == "error_event")
    rows = ledger.audit(ctx.pg_url, outcomes)
    return Row(
        "upstream truncation",
        "upstream",
        f"cut JSON and cut streams: {five_hundreds} answered 500; of 10 streams cut after their "
        f"first chunks, {complete} passed off as complete, {flagged} ended with an error event; "
        f"plain answers {statuses(plain)}; {ledger_text(rows)}",
        "no 500 (fallback or 502 naming the provider; a cut stream ends in an error event); 0 lost",
        not five_hundreds and not complete and clean(rows),
        {
            "providers": statuses_by_provider(outcomes),
            "500": five_hundreds,
            "streams_passed_as_complete": complete,
            "streams_with_error_event": flagged,
            "plain": statuses(plain),
            "streams": statuses(streams),
            **rows,
        },
    )


class RssSampler:
    """Peak resident memory of the gateway processes, sampled every 0.2 s in a thread."""

    def __init__(self, pids: list[int]):
        self.pids, self.peak, self._stop = pids, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def total(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            time.sleep(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()


@scenario("upstream huge body", "upstream")
async def upstream_huge(ctx: Context) -> Row:
    ctx.stack.fault(faulty_huge={"mode": "huge", "huge_mb": HUGE_MB})
    pids = [proc.pid for proc in ctx.stack.gateways]
    sampler = RssSampler(pids)
    before = sampler.total()
    with sampler:
        plain = await requests(ctx, "huge", 2, 2, timeout=60)
        streams = await requests(ctx, "huge", 2, 2, stream=True, timeout=60)
    await asyncio.sleep(2)
    after = sampler.total()
    # Relayed: the client got (nearly) all of the giant answer.
    relayed = count(plain + streams, lambda o: o.size > HUGE_MB * 900_000)
    five_hundreds = count(plain + streams, lambda o: o.status == 500)
    rows = ledger.audit(ctx.pg_url, plain + streams)
    growth, kept = round(sampler.peak - before), round(after - before)
    return Row(
        "upstream huge body",
        "upstream",
        f"60 MB answers (2 JSON, 2 streams): {relayed}/4 relayed in full, {five_hundreds} 500; "
        f"gateway RSS {before:.0f} MB → peak +{growth} MB, +{kept} MB after; {ledger_text(rows)}",
        "refused with a 502 naming the provider (stream: error event); peak RSS growth < 100 MB",
        not relayed and not five_hundreds and growth < 100 and clean(rows),
        {
            "relayed": relayed,
            "rss_before_mb": round(before),
            "rss_peak_growth_mb": growth,
            "rss_kept_mb": kept,
            "plain": statuses(plain),
            "streams": statuses(streams),
            **rows,
        },
    )


# Last of the scenarios that count usage rows: a row the database refuses could hold up the
# usage queue for every scenario after it.
@scenario("upstream absurd usage", "upstream")
async def upstream_absurd(ctx: Context) -> Row:
    ctx.stack.fault(faulty_absurd={"mode": "absurd"})
    plain = await requests(ctx, "absurd", 4, 4)
    outcomes = plain + await requests(ctx, "absurd", 4, 4, stream=True)
    rows = ledger.audit(ctx.pg_url, outcomes)
    extremes = ledger.usage_extremes(ctx.pg_url, [o.request_id for o in outcomes])
    worst_out = extremes["max_output_tokens"] or 0
    worst_in = extremes["max_input_tokens"] or 0
    recorded = (
        f"recorded at most {worst_in} input / {worst_out} output tokens, cost "
        f"${extremes['max_cost']} (max_tokens 20)"
        if rows["rows"]
        else "no usage row written"
    )
    return Row(
        "upstream absurd usage",
        "upstream",
        f"upstream reports 10^15 tokens: {recorded}; {fives(outcomes)} 5xx; {ledger_text(rows)}",
        "recorded tokens bounded (output ≤ max_tokens, input ≤ the context window); 0 5xx",
        worst_out <= 20 and worst_in <= 128_000 and not fives(outcomes) and clean(rows),
        {**extremes, "statuses": statuses(outcomes), **rows},
    )
