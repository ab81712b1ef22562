"""Server time of every dashboard page with many usage records in one organisation.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_dashboard_bench \
        .venv/bin/python bench/dashboard.py --records 1000000

Migrates the database, seeds the organisation once (`manage.py seed_usage`, which also rolls the
records up like the Celery beat task), then times each page through Django's full request path
in-process (middleware, view, queries, template): the server's time, without the network.
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
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
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
    have = UsageRecord.objects.for_org(org).count()
    if have < args.records:
        print(f"seeding {args.records - have} records…", flush=True)
        call_command("seed_usage", org.slug, records=args.records - have)
    record = UsageRecord.objects.for_org(org).order_by("-created_at").first()

    client = Client()
    client.force_login(user)
    print(f"\n{UsageRecord.objects.for_org(org).count():,} usage records in the organisation")
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


if __name__ == "__main__":
    main()
