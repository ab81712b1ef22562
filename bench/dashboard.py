"""Server time of every dashboard page and usage API endpoint with many usage records.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_dashboard_bench \
        .venv/bin/python bench/dashboard.py --records 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_ledger_bench \
        .venv/bin/python bench/dashboard.py --rows 10000000 --orgs 1000 --time-rollup

Migrates the database, seeds once, then times each page through Django's full request path
in-process (middleware, view, queries, template): the server's time, without the network.
`--records` seeds the "Bench" organisation alone with bulk inserts (`manage.py seed_usage`, which
also rolls the records up like the Celery beat task); `--rows` makes that many records in the
database across `--orgs` organisations, "Bench" being one of them with `--hot-share` of the rows
(`seed_usage --rows`). `--time-rollup` then throws the roll-ups away (TRUNCATE) and times the
roll-up job rebuilding all of them, the way a fresh deployment (or the first beat run) would, then
vacuums and analyses the roll-up table (what autovacuum does next) before the pages are timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

PAGES = [
    "/dashboard/",
    "/dashboard/analytics/",
    "/dashboard/analytics/?model=gpt-4o-mini",
    "/dashboard/analytics/?format=csv",
    "/dashboard/requests/",
    "/dashboard/requests/?status=error",
    "/dashboard/requests/{record}/",
    "/dashboard/keys/",
    "/dashboard/team/",
    "/dashboard/settings/",
    "/dashboard/settings/alerts/",
    "/dashboard/playground/",
    "/dashboard/models/",
    "/billing/",
    "/billing/plan-usage/",
    "/api/dashboard/analytics",
    "/api/dashboard/recent-requests",
    "/api/dashboard/recent-requests?status=error",
    "/api/dashboard/recent-requests?model=gpt-4o-mini&page_size=200",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rows", type=int, help="records made in the database (PostgreSQL)")
    parser.add_argument("--orgs", type=int, default=1000, help="with --rows")
    parser.add_argument("--hot-share", type=float, default=0.1, help="Bench's share of --rows")
    parser.add_argument("--time-rollup", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from analytics.models import UsageRecord
    from organizations.api_keys import mint_api_key
    from organizations.memberships import create_organization

    call_command("migrate", verbosity=0)
    user = User.objects.filter(email="bench@example.test").first()
    if user is None:
        user = User.objects.create_user("bench@example.test", "bench-password-123")
        org = create_organization(name="Bench", owner=user)
        for name in ("production", "staging", "batch jobs"):
            mint_api_key(org, name=name, created_by=user)
    org = user.current_organization
    if args.rows:
        if not UsageRecord.objects.exists():
            print(f"seeding {args.rows:,} records across {args.orgs} organisations…", flush=True)
            call_command(
                "seed_usage",
                org.slug,
                rows=args.rows,
                orgs=args.orgs,
                hot_share=args.hot_share,
                no_rollup=args.time_rollup,
            )
    else:
        have = UsageRecord.objects.for_org(org).count()
        if have < args.records:
            print(f"seeding {args.records - have} records…", flush=True)
            call_command("seed_usage", org.slug, records=args.records - have)
    if args.time_rollup:
        time_rollup()
    record = UsageRecord.objects.for_org(org).order_by("-created_at").first()

    client = Client()
    client.force_login(user)
    total = UsageRecord.objects.count() if args.rows else None
    print(f"\n{UsageRecord.objects.for_org(org).count():,} usage records in the organisation")
    if total is not None:
        print(f"{total:,} usage records in all")
    print(f"{connection.vendor}, {args.repeat} requests per page\n")
    print("| page | median ms | p95 ms | max ms | queries |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for page in PAGES:
        url = page.format(record=record.pk)
        assert client.get(url).status_code == 200, url  # warm up
        times = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, url
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(
            f"| `{page}` | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} "
            f"| {len(queries)} |"
        )


def time_rollup() -> None:
    """Drop every roll-up, then time the roll-up job rebuilding them from the raw records."""
    from django.db import connection
    from django.utils import timezone

    from analytics.models import PendingRollup, RollupFillState, UsageRecord, UsageRollup
    from analytics.rollups import roll_up_usage

    if connection.vendor == "postgresql":  # an empty table, as in a fresh deployment
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {UsageRollup._meta.db_table}")
    else:
        UsageRollup.objects.all().delete()
    RollupFillState.objects.all().delete()
    PendingRollup.objects.all().delete()
    first = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True)[0]
    now = timezone.now()
    hours = int((now - first).total_seconds() // 3600) + 2
    started = time.perf_counter()
    roll_up_usage(now, max_hours=hours)
    took = time.perf_counter() - started
    if connection.vendor == "postgresql":  # what autovacuum does next: statistics, hint bits
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {UsageRollup._meta.db_table}")
    print(
        f"roll-up of {UsageRecord.objects.count():,} records ({hours} hours): {took:.1f} s, "
        f"{UsageRollup.objects.filter(frequency='hour').count():,} hourly and "
        f"{UsageRollup.objects.filter(frequency='day').count():,} daily rows",
        flush=True,
    )


if __name__ == "__main__":
    main()
