"""A catch-up over many days: days rebuilt on several connections at once, one run at a time, and
a run that fails midway costs nothing but a re-run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import Count, Sum

from analytics import rollups
from analytics.models import Frequency, RollupFillState, UsageRecord, UsageRollup
from analytics.rollups import ROLLUP_LOCK, get_fill_end, roll_up_usage, usage_totals

# Transactions of their own: the days are rebuilt on other connections, which must see the rows.
pytestmark = pytest.mark.django_db(transaction=True)
# Midnight ten days ago: the dates themselves do not matter, only that they are whole past days.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
NOW = BASE + timedelta(days=6)
DAYS = 5


def seed(org, api_key):
    """A record every 5 hours over DAYS days, alternating keys and models."""
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            api_key=api_key if n % 2 else None,
            request_id=f"catch-up-{n}",
            created_at=BASE + timedelta(hours=5 * n, minutes=n % 60),
            endpoint="chat.completions",
            requested_model=("gpt-4o", "fast", "claude")[n % 3],
            input_tokens=100 + n,
            output_tokens=n,
            cost=Decimal("0.00010001") * n,
            status=502 if n % 7 == 0 else 200,
        )
        for n in range(DAYS * 24 // 5)
    )


def rolled_rows():
    fields = ("frequency", "period_start", "api_key_id", "model", "requests", "cost")
    return sorted(UsageRollup.objects.values_list(*fields), key=repr)


def sums(queryset, count):
    return queryset.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost"), n=count)


def assert_rollups_equal_the_records(org):
    raw = sums(UsageRecord.objects.filter(organization=org), Count("id"))
    for frequency in (Frequency.HOUR, Frequency.DAY):
        rolled = UsageRollup.objects.filter(organization=org, frequency=frequency)
        assert sums(rolled, Sum("requests")) == raw, frequency
    days = UsageRollup.objects.filter(frequency=Frequency.DAY)
    for day in set(days.values_list("period_start", flat=True)):
        hours = UsageRollup.objects.filter(
            frequency=Frequency.HOUR,
            period_start__gte=day,
            period_start__lt=day + timedelta(days=1),
        )
        assert sums(hours, Sum("requests")) == sums(days.filter(period_start=day), Sum("requests"))


def start_over():
    UsageRollup.objects.all().delete()
    RollupFillState.objects.all().delete()


def test_a_catch_up_gives_the_same_roll_ups_on_one_connection_or_several(
    org, api_key, settings, monkeypatch
):
    seed(org, api_key[0])
    threads = set()
    rebuild = rollups._rebuild_marked

    def noting_the_thread(start, end):
        threads.add(threading.current_thread().name)
        rebuild(start, end)

    monkeypatch.setattr(rollups, "_rebuild_marked", noting_the_thread)
    results = {}
    for workers in (1, 2, 4):
        start_over()
        threads.clear()
        settings.GATEWAY_ROLLUP_WORKERS = workers
        assert roll_up_usage(NOW) == NOW - timedelta(hours=1)  # the lag: 300 s
        assert_rollups_equal_the_records(org)
        results[workers] = rolled_rows()
        helpers = {name for name in threads if name.startswith("rollup")}
        if connection.vendor == "postgresql" and workers > 1:
            assert len(helpers) == workers  # the days went to that many connections
        else:
            assert not helpers
    assert results[1] == results[2] == results[4]
    assert len({row[1].date() for row in results[1]}) == DAYS


def test_a_catch_up_that_fails_midway_moves_no_mark_and_a_rerun_counts_each_record_once(
    org, api_key, settings, monkeypatch
):
    seed(org, api_key[0])
    settings.GATEWAY_ROLLUP_WORKERS = 2
    rebuild = rollups._rebuild_marked
    broken_day = (BASE + timedelta(days=2)).date()

    def failing_on_one_day(start, end):
        if start.date() == broken_day:
            raise RuntimeError("connection lost")
        rebuild(start, end)

    monkeypatch.setattr(rollups, "_rebuild_marked", failing_on_one_day)
    with pytest.raises(RuntimeError):
        roll_up_usage(NOW)
    assert get_fill_end() is None
    # The whole days after the first, written ahead of the mark, and nothing a reader of the
    # mark's own day would see.
    assert UsageRollup.objects.exists()
    assert not UsageRollup.objects.filter(period_start__lt=BASE + timedelta(days=1)).exists()
    everything = usage_totals(org, BASE, NOW)  # read raw: the mark never moved
    assert everything.requests == UsageRecord.objects.count()

    monkeypatch.setattr(rollups, "_rebuild_marked", rebuild)
    roll_up_usage(NOW)
    assert_rollups_equal_the_records(org)
    assert usage_totals(org, BASE, NOW) == everything


def test_a_run_while_another_holds_the_roll_up_lock_leaves_everything_to_it(org, api_key):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: no lock to hold")
    seed(org, api_key[0])
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ROLLUP_LOCK])
        assert roll_up_usage(NOW) is None
        assert not UsageRollup.objects.exists()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ROLLUP_LOCK])
    finally:
        other.close()
    assert roll_up_usage(NOW) == NOW - timedelta(hours=1)
    assert_rollups_equal_the_records(org)
