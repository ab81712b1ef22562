"""A record written after its hour was rolled up still reaches the hourly and daily roll-ups."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from analytics import rollups
from analytics.models import Frequency, PendingRollup, UsageRollup
from analytics.rollups import floor_day, floor_hour, roll_up_usage, usage_totals
from analytics.usage_writer import serialise_usage, write_usage_payloads

pytestmark = pytest.mark.django_db
_ids = itertools.count()
HOUR = timedelta(hours=1)


def write(org, at, tokens=10, cost="0.01"):
    record = {
        "request_id": f"late-{next(_ids)}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "status": 200,
        "input_tokens": tokens,
        "cost": Decimal(cost),
        "created_at": at,
    }
    write_usage_payloads([serialise_usage(record)])


def rolled(frequency, start):
    rows = UsageRollup.objects.filter(frequency=frequency, period_start=start)
    return rows.aggregate(tokens=Sum("input_tokens"), cost=Sum("cost"), requests=Sum("requests"))


@pytest.fixture
def day_start():
    # Three hours into a day, so the hours used below lie within it.
    return floor_day(timezone.now()) - timedelta(days=1) + timedelta(hours=3)


def test_a_late_row_is_rolled_up_into_its_hour_and_day(org, day_start):
    hour = day_start
    write(org, hour + timedelta(minutes=10))
    with time_machine.travel(hour + 3 * HOUR, tick=False):
        roll_up_usage()
        assert rolled(Frequency.HOUR, hour)["tokens"] == 10
        assert not PendingRollup.objects.exists()

        write(org, hour + timedelta(minutes=59), tokens=5, cost="0.02")  # late
        # Exact before the next roll-up too: the marked hour is read raw.
        assert usage_totals(org, hour, hour + HOUR).tokens == 15
        roll_up_usage()

    assert rolled(Frequency.HOUR, hour) == {"tokens": 15, "cost": Decimal("0.03"), "requests": 2}
    assert rolled(Frequency.DAY, floor_day(hour))["tokens"] == 15
    assert not PendingRollup.objects.exists()


def test_a_row_committed_during_a_rebuild_leaves_the_hour_marked(org, day_start, monkeypatch):
    hour = day_start
    write(org, hour + timedelta(minutes=1))
    rebuild = rollups._rebuild

    def rebuild_while_a_row_arrives(start, end):
        rebuild(start, end)
        write(org, hour + timedelta(minutes=2), tokens=7)  # committed after the rebuild read

    monkeypatch.setattr(rollups, "_rebuild", rebuild_while_a_row_arrives)
    rollups._rebuild_marked(hour, hour + HOUR)
    monkeypatch.undo()

    assert rolled(Frequency.HOUR, hour)["tokens"] == 10
    assert PendingRollup.objects.filter(hour=hour).exists()
    with time_machine.travel(hour + 3 * HOUR, tick=False):
        roll_up_usage()
    assert rolled(Frequency.HOUR, hour)["tokens"] == 17
    assert not PendingRollup.objects.exists()


def test_usage_totals_of_one_key_count_only_that_key(org, api_key, day_start):
    write(org, day_start)
    record = {
        "request_id": "keyed",
        "organization_id": org.id,
        "api_key_id": api_key[0].id,
        "endpoint": "chat.completions",
        "status": 200,
        "cost": Decimal("0.5"),
        "created_at": day_start + timedelta(minutes=5),
    }
    write_usage_payloads([serialise_usage(record)])
    with time_machine.travel(day_start + 3 * HOUR, tick=False):
        roll_up_usage()
        keyed = usage_totals(org, day_start, timezone.now(), api_key_id=api_key[0].id)
        everything = usage_totals(org, day_start, timezone.now())

    assert (keyed.requests, keyed.cost) == (1, Decimal("0.5"))
    assert (everything.requests, everything.cost) == (2, Decimal("0.51"))
    assert floor_hour(day_start) == day_start


def test_the_dashboard_counts_a_late_row_before_its_hour_is_rebuilt(org, day_start):
    from analytics.dashboard_queries import Period, usage_cube

    write(org, day_start + timedelta(minutes=10))
    with time_machine.travel(day_start + 3 * HOUR, tick=False):
        roll_up_usage()
        write(org, day_start + timedelta(minutes=20), tokens=5)  # late
        period = Period(start=floor_day(day_start).date(), end=floor_day(day_start).date())
        cube = usage_cube(org, period)

    assert sum(usage.input_tokens for usage in cube.values()) == 15
    assert sum(usage.requests for usage in cube.values()) == 2
