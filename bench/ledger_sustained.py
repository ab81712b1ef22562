"""`bench/ledger.py --sustained`: records/s through the Redis stream into the database.

The records are serialised before the clock starts (the edge pays that cost, not the ledger); a
producer process then XADDs them at the target rate in 20 slices a second, while each flusher
process loops over the real `flush_pending_usage` (what the Celery beat task calls). The run
passes when the flushers kept up (the backlog was drained within a few seconds of the last
record) and every distinct request id is exactly one row, with no dead letter.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from decimal import Decimal

SLICES_PER_SECOND = 20


def run_sustained(args) -> int:
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.db import connections

    from analytics.models import DeadLetterUsage, PendingRollup, UsageRecord
    from analytics.recording import STREAM_KEY
    from analytics.usage_writer import serialise_usage
    from llm.redis_clients import get_sync_redis, uses_real_redis
    from organizations.models import Organization

    redis = get_sync_redis()
    if not uses_real_redis() or connections["default"].vendor != "postgresql":
        print("--sustained needs REDIS_URL and a PostgreSQL DATABASE_URL")
        return 2
    call_command("migrate", verbosity=0)
    UsageRecord.objects.all().delete()
    PendingRollup.objects.all().delete()
    DeadLetterUsage.objects.all().delete()
    redis.delete(STREAM_KEY)
    orgs = [
        Organization.objects.get_or_create(
            slug=f"ledger-bench-{n}", defaults={"name": f"Ledger bench {n}"}
        )[0].pk
        for n in range(args.orgs)
    ]

    rng = random.Random(args.seed)
    total = args.rate * args.seconds
    payloads, request_ids = [], set()
    prefix = f"ls{int(time.time())}-"
    for n in range(total):
        record = {
            "request_id": f"{prefix}{n}",
            "organization_id": rng.choice(orgs),
            "endpoint": "chat.completions",
            "requested_model": "gpt-4o-mini",
            "provider": "openai",
            "status": 200 if rng.random() < 0.97 else 502,
            "input_tokens": rng.randint(0, 4_000),
            "output_tokens": rng.randint(0, 1_000),
            "cost": Decimal(rng.randint(0, 3_000_000)).scaleb(-8),
            "latency_ms": rng.randint(50, 3_000),
        }
        if rng.random() < args.poison:
            record.update(requested_model="x" * 10_000, input_tokens=10**15)  # bounded, kept
        payload = serialise_usage(record)
        payloads.append(payload)
        if rng.random() < args.replays:
            payloads.append(payload)  # the same request queued twice: one row
        request_ids.add(record["request_id"])
    connections.close_all()  # the children open their own

    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    flushers = [
        ctx.Process(target=_flush_until, args=(stop, args.writer), daemon=True)
        for _ in range(args.flushers)
    ]
    for process in flushers:
        process.start()
    produced = ctx.Value("d", 0.0)
    producer = ctx.Process(target=_produce, args=(payloads, args.rate, produced), daemon=True)
    started = time.perf_counter()
    producer.start()
    max_backlog, samples = 0, []
    while producer.is_alive():
        backlog = redis.xlen(STREAM_KEY)
        max_backlog = max(max_backlog, backlog)
        samples.append(backlog)
        time.sleep(0.5)
    producer.join()
    produced_at = time.perf_counter()
    while redis.xlen(STREAM_KEY) and time.perf_counter() - produced_at < 600:
        time.sleep(0.05)
    drained_at = time.perf_counter()
    stop.set()
    for process in flushers:
        process.join(timeout=60)

    rows = UsageRecord.objects.filter(request_id__startswith=prefix).count()
    dead = DeadLetterUsage.objects.count()
    queued = len(payloads)
    produce_s, total_s = produced.value, drained_at - started
    print(f"database: {os.environ.get('DATABASE_URL', '').split('@')[-1]}; queue: Redis stream")
    print(f"writer: {args.writer}; flushers: {args.flushers}; batch: {_batch_size()}")
    print(f"target {args.rate} records/s for {args.seconds} s: {len(request_ids)} requests")
    print(f"queued {queued} entries in {produce_s:.1f} s ({queued / produce_s:.0f}/s)")
    print(
        f"written {rows} rows; drained {drained_at - produced_at:.1f} s after the last entry; "
        f"{rows / total_s:.0f} rows/s over the run"
    )
    print(
        f"backlog: max {max_backlog}, median {sorted(samples)[len(samples) // 2] if samples else 0}"
    )
    print(f"dead letters {dead}")
    ok = rows == len(request_ids) and dead == 0 and not redis.xlen(STREAM_KEY)
    print("count in = count out" if ok else "LOSS OR DUPLICATES")
    return 0 if ok else 1


def _batch_size() -> int:
    from django.conf import settings

    return int(settings.GATEWAY_USAGE_FLUSH_BATCH)


def _produce(payloads: list[str], rate: int, produced) -> None:
    from analytics import recording
    from llm.redis_clients import get_sync_redis

    redis = get_sync_redis()
    step = max(1, rate // SLICES_PER_SECOND)
    started = time.perf_counter()
    for n, first in enumerate(range(0, len(payloads), step)):
        pipe = redis.pipeline(transaction=False)
        for payload in payloads[first : first + step]:
            pipe.xadd(recording.STREAM_KEY, {"p": payload})
        pipe.execute()
        delay = started + (n + 1) / SLICES_PER_SECOND - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    produced.value = time.perf_counter() - started


def _flush_until(stop, writer: str) -> None:
    from analytics import recording, usage_writer
    from analytics.models import UsageRecord

    recording.CONSUMER = f"bench-{os.getpid()}"
    if writer == "insert":

        def insert_rows(rows):
            records = [UsageRecord(**row) for row in rows]
            UsageRecord.objects.bulk_create(records, ignore_conflicts=True, batch_size=500)

        usage_writer._copy_rows = insert_rows
    while not stop.is_set():
        if not recording.flush_pending_usage():
            time.sleep(0.02)
