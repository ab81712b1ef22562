"""Ledger simulation: N usage records through the real queue flush, roll-ups and Stripe metering.

No HTTP: records are queued exactly as the edge queues them (the serialised, bounded form, into
the Redis stream: with REDIS_URL, else in the embedded store), hour by simulated hour, with late
rows (written after their hour was rolled up), replays (the same request id twice) and poison rows
(a 10,000-character model name, 10^15 tokens). At every hour boundary the real
`flush_pending_usage`, `roll_up_usage` and `report_overage` run (Stripe is an in-memory fake
client); at the end `reconcile_usage` must show no drift and rows must equal requests.

    DATABASE_URL=sqlite:///bench-ledger.sqlite3 .venv/bin/python bench/ledger.py --records 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_ledger REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/ledger.py

With `--sustained` it measures the write path instead: a producer process queues `--rate`
records a second for `--seconds` into the Redis stream while `--flushers` processes drain it with
the real `flush_pending_usage`; it reports records/s in and out, the largest backlog, and checks
that every distinct request became exactly one row (count in = count out). `--writer insert`
swaps the COPY writer for batched INSERTs, to compare.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_ledger REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/ledger.py --sustained --rate 5000 --seconds 60

The database is migrated and its ledger tables emptied first: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
os.environ.setdefault("STRIPE_TEST_SECRET_KEY", "sk_test_" + "0" * 32)
os.environ.setdefault("GATEWAY_USAGE_FLUSH_SECONDS", "0")
os.environ.setdefault("LOG_LEVEL", "ERROR")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--late", type=float, default=0.01, help="share of late rows")
    parser.add_argument("--replays", type=float, default=0.001, help="share queued twice")
    parser.add_argument("--poison", type=float, default=0.0001, help="share of poison rows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sustained", action="store_true", help="records/s through the stream")
    parser.add_argument("--rate", type=int, default=5_000, help="with --sustained: records/s")
    parser.add_argument("--seconds", type=int, default=60, help="with --sustained")
    parser.add_argument("--flushers", type=int, default=1, help="with --sustained")
    parser.add_argument("--writer", choices=["copy", "insert"], default="copy")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.sustained:
        from ledger_sustained import run_sustained  # beside this file

        return run_sustained(args)
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)  # bounded poison rows log a warning each
    import stripe
    from django.core.management import call_command

    from analytics.models import (
        DeadLetterUsage,
        PendingRollup,
        RollupFillState,
        UsageRecord,
        UsageRollup,
    )
    from analytics.recording import STREAM_KEY, flush_pending_usage
    from analytics.rollups import roll_up_usage
    from analytics.usage_writer import serialise_usage
    from billing.accounts import get_billing_account
    from billing.metering import report_overage
    from billing.models import MeterReport, Plan, SubscriptionStatus
    from billing.periods import current_period
    from billing.reconciliation import format_reconciliation, reconcile_usage
    from llm.redis_clients import get_sync_redis, uses_real_redis
    from organizations.models import Organization
    from tests.billing.fake_stripe import FakeStripe

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    for model in (UsageRecord, UsageRollup, PendingRollup, RollupFillState, MeterReport):
        model.objects.all().delete()
    DeadLetterUsage.objects.all().delete()
    redis = get_sync_redis()
    redis.delete(STREAM_KEY)
    fake = FakeStripe()
    stripe.default_http_client = fake

    plan, _ = Plan.objects.update_or_create(
        slug="bench-metered",
        defaults={"name": "Bench metered", "monthly_tokens": 5_000_000, "overage": "bill"},
    )
    orgs = []
    for n in range(args.orgs):
        org, _ = Organization.objects.get_or_create(
            slug=f"ledger-bench-{n}", defaults={"name": f"Ledger bench {n}"}
        )
        org.plan = plan.slug
        org.save(update_fields=["plan"])
        account = get_billing_account(org)
        account.status, account.stripe_customer_id = SubscriptionStatus.ACTIVE, f"cus_bench{n}"
        account.save()
        orgs.append(org)
    setup_s = time.perf_counter() - started

    rng = random.Random(args.seed)
    base = current_period()[1]  # the start of next month: a whole period ahead of the run
    per_hour = args.records // args.hours
    queued = requests = 0
    timings = {"queue": 0.0, "flush": 0.0, "roll-up": 0.0, "metering": 0.0}
    ids = iter(range(10**12))

    def queue(payloads: list[str]) -> None:
        pipe = redis.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(STREAM_KEY, {"p": payload})
        pipe.execute()

    run_started = time.perf_counter()
    for hour in range(args.hours):
        hour_start = base + timedelta(hours=hour)
        count = per_hour if hour < args.hours - 1 else args.records - per_hour * hour
        tick = time.perf_counter()
        payloads = []
        for _ in range(count):
            at = hour_start + timedelta(seconds=rng.randrange(3600))
            if hour and rng.random() < args.late:
                at -= timedelta(hours=rng.randint(1, min(hour, 3)))  # an hour already rolled up
            record = {
                "request_id": f"lb{next(ids)}",
                "organization_id": rng.choice(orgs).pk,
                "endpoint": "chat.completions",
                "requested_model": "gpt-4o-mini",
                "created_at": at,
                "status": 200 if rng.random() < 0.97 else 502,
                "input_tokens": rng.randint(0, 4_000),
                "output_tokens": rng.randint(0, 1_000),
                "cost": Decimal(rng.randint(0, 3_000_000)).scaleb(-8),
            }
            if rng.random() < args.poison:
                record.update(requested_model="x" * 10_000, input_tokens=10**15)
            payload = serialise_usage(record)
            payloads.append(payload)
            if rng.random() < args.replays:
                payloads.append(payload)
            requests += 1
            if len(payloads) >= 2_000:
                queue(payloads)
                queued += len(payloads)
                payloads = []
        queue(payloads)
        queued += len(payloads)
        timings["queue"] += time.perf_counter() - tick
        now = hour_start + timedelta(hours=1, minutes=6)  # past the roll-up lag
        tick = time.perf_counter()
        flush_pending_usage()
        timings["flush"] += time.perf_counter() - tick
        tick = time.perf_counter()
        roll_up_usage(now)
        timings["roll-up"] += time.perf_counter() - tick
        tick = time.perf_counter()
        for org in orgs:
            report_overage(org, now)
        timings["metering"] += time.perf_counter() - tick
        print(f"hour {hour + 1}/{args.hours}: {requests} requests", file=sys.stderr, flush=True)
    end = base + timedelta(hours=args.hours + 1, minutes=6)
    flush_pending_usage()
    roll_up_usage(end)
    for org in orgs:
        report_overage(org, end)
    run_s = time.perf_counter() - run_started
    ledger = reconcile_usage(base, now=end)
    rows = UsageRecord.objects.count()
    meter_tokens = sum(int(e["payload[value]"]) for e in fake.meter_events.values())

    print(f"database: {os.environ.get('DATABASE_URL', 'sqlite (default)').split('@')[-1]}")
    print(f"queue: {'Redis stream' if uses_real_redis() else 'stream in the embedded store'}")
    print(f"requests {requests}, entries queued {queued} (replays included), rows {rows}")
    print(f"dead letters {DeadLetterUsage.objects.count()}, meter events {len(fake.meter_events)}")
    print(f"meter tokens sent to Stripe {meter_tokens}")
    for line in format_reconciliation(ledger):
        print(line)
    print(f"setup {setup_s:.1f} s; run {run_s:.1f} s: {args.records} records, {args.hours} h")
    for name, seconds in timings.items():
        print(f"  {name:10} {seconds:8.1f} s")
    ok = not ledger.drift and rows == requests and meter_tokens == ledger.meter_reported
    print("drift 0" if ok else "DRIFT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
