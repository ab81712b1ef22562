from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import Frequency, RollupFillState, UsageRecord, UsageRollup
from analytics.rollups import roll_up_usage, roll_up_window, usage_totals
from analytics.tasks import roll_up_usage_records

pytestmark = pytest.mark.django_db
BASE = datetime(2026, 5, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=3)
_ids = itertools.count()

records = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 60 - 1),  # minute offset
        st.integers(min_value=0, max_value=5_000),  # input tokens
        st.integers(min_value=0, max_value=5_000),  # output tokens
        st.decimals(min_value=0, max_value=5, places=8, allow_nan=False),
        st.sampled_from(["gpt-4o", "fast", "claude"]),
        st.sampled_from([200, 200, 429, 502]),
        st.booleans(),  # which key
    ),
    max_size=40,
)


def write(org, keys, rows):
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            api_key=keys[use_second],
            request_id=f"r{next(_ids)}",
            created_at=BASE + timedelta(minutes=minute),
            endpoint="chat.completions",
            requested_model=model,
            input_tokens=tin,
            output_tokens=tout,
            cost=cost,
            status=status,
        )
        for minute, tin, tout, cost, model, status, use_second in rows
    )


def raw_sums(org, **filters):
    return UsageRecord.objects.filter(organization=org, **filters).aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost")
    )


def rollup_sums(org, frequency):
    return UsageRollup.objects.filter(organization=org, frequency=frequency).aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost"), n=Sum("requests")
    )


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=records, cut=st.integers(min_value=0, max_value=3 * 24))
def test_rollups_equal_the_raw_records_and_are_stable_on_rerun(org, api_key, rows, cut):
    UsageRecord.objects.all().delete()
    UsageRollup.objects.all().delete()
    RollupFillState.objects.all().delete()
    keys = [None, api_key[0]]
    write(org, keys, rows)
    roll_up_usage(NOW + timedelta(hours=1))  # every record's hour is complete
    raw = raw_sums(org)
    for frequency in (Frequency.HOUR, Frequency.DAY):
        sums = rollup_sums(org, frequency)
        assert (sums["i"], sums["o"], sums["n"]) == (raw["i"], raw["o"], len(rows) or None)
        assert (sums["c"] or Decimal(0)) == (raw["c"] or Decimal(0))
    before = list(
        UsageRollup.objects.order_by("pk").values(
            "model", "api_key", "frequency", "period_start", "requests", "input_tokens", "cost"
        )
    )
    roll_up_window(BASE, NOW)
    roll_up_usage(NOW + timedelta(hours=1))
    after = list(
        UsageRollup.objects.order_by("pk").values(
            "model", "api_key", "frequency", "period_start", "requests", "input_tokens", "cost"
        )
    )
    key = lambda r: (r["period_start"], r["frequency"], r["model"], r["api_key"] or 0)  # noqa: E731
    assert sorted(before, key=key) == sorted(after, key=key)
    # Totals over any window read roll-ups and raw records without double counting.
    start, end = BASE + timedelta(minutes=7), BASE + timedelta(hours=cut, minutes=13)
    window = raw_sums(org, created_at__gte=start, created_at__lt=end)
    totals = usage_totals(org, start, end)
    assert totals.input_tokens == (window["i"] or 0)
    assert totals.cost == (window["c"] or Decimal(0))


def test_records_after_the_mark_are_read_raw(org):
    write(org, [None, None], [(10, 100, 0, Decimal("0.5"), "fast", 200, False)])
    roll_up_usage(BASE + timedelta(hours=2))
    write(org, [None, None], [(125, 7, 0, Decimal("0.25"), "fast", 200, False)])
    totals = usage_totals(org, BASE, BASE + timedelta(days=1))
    assert (totals.requests, totals.input_tokens, totals.cost) == (2, 107, Decimal("0.75"))


def test_the_task_advances_the_mark_and_a_second_run_changes_nothing(org, time_machine):
    time_machine.move_to(NOW, tick=False)
    write(org, [None, None], [(0, 1, 1, Decimal(0), "fast", 200, False)])
    roll_up_usage_records.apply().get()
    count = UsageRollup.objects.count()
    roll_up_usage_records.apply().get()
    assert UsageRollup.objects.count() == count == 2  # one hour row, one day row
    assert RollupFillState.objects.get().end == NOW - timedelta(hours=1)


def test_rollups_keep_provider_error_class_and_latency(org):
    hour = BASE + timedelta(hours=5)
    rows = [("openai", "", 200, 100), ("openai", "", 200, 300), ("groq", "upstream_error", 502, 50)]
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            request_id=f"r{next(_ids)}",
            created_at=hour + timedelta(minutes=n),
            endpoint="chat.completions",
            requested_model="small",
            provider=provider,
            error_class=error_class,
            status=status,
            latency_ms=latency,
        )
        for n, (provider, error_class, status, latency) in enumerate(rows)
    )
    roll_up_window(hour, hour + timedelta(hours=1))
    for frequency in (Frequency.HOUR, Frequency.DAY):
        found = {
            (r.provider, r.error_class): (r.requests, r.errors, r.latency_ms_sum)
            for r in UsageRollup.objects.filter(organization=org, frequency=frequency)
        }
        assert found == {("openai", ""): (2, 0, 400), ("groq", "upstream_error"): (1, 1, 50)}


def test_a_window_cut_mid_day_keeps_each_day_the_sum_of_its_hours(org):
    # Records on three days; rebuilding from 05:00 on day one to 03:00 on day three goes a day
    # at a time, and the first and last days keep the hours outside the window.
    write(org, [None, None], [(m, 1, 0, Decimal("0.1"), "fast", 200, False) for m in (30, 400)])
    write(org, [None, None], [(m, 1, 0, Decimal("0.1"), "fast", 200, False) for m in (1500, 3000)])
    roll_up_usage(NOW + timedelta(hours=1))
    write(org, [None, None], [(m, 5, 0, Decimal("1"), "fast", 200, False) for m in (420, 2900)])
    roll_up_window(BASE + timedelta(hours=5), BASE + timedelta(days=2, hours=3))
    days = {
        r.period_start: r.input_tokens
        for r in UsageRollup.objects.filter(organization=org, frequency=Frequency.DAY)
    }
    assert days == {BASE: 7, BASE + timedelta(days=1): 1, BASE + timedelta(days=2): 6}
    assert rollup_sums(org, Frequency.HOUR)["i"] == raw_sums(org)["i"] == 14


def test_roll_ups_follow_deleted_organisations_and_keys(org, other_org, api_key):
    # The roll-ups' keys have no database constraint: the ORM cascades and nulls them.
    write(org, [api_key[0], api_key[0]], [(10, 1, 0, Decimal(0), "fast", 200, False)])
    write(other_org, [None, None], [(10, 1, 0, Decimal(0), "fast", 200, False)])
    roll_up_usage(NOW)
    assert UsageRollup.objects.filter(api_key=api_key[0]).count() == 2
    api_key[0].delete()
    assert UsageRollup.objects.filter(organization=org, api_key__isnull=True).count() == 2
    org.delete()
    assert not UsageRollup.objects.filter(organization_id=org.pk).exists()
    assert UsageRollup.objects.filter(organization=other_org).count() == 2
