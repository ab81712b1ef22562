"""manage.py reconcile_usage: drift first, and a non-zero exit when the ledger does not add up."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from analytics.models import UsageRecord
from analytics.rollups import floor_hour, roll_up_usage
from analytics.usage_writer import serialise_usage, write_usage_payloads
from tests.clock import next_month

pytestmark = pytest.mark.django_db
START = next_month(2)


def write(org, n, at):
    record = {
        "request_id": f"rec-{n}",
        "organization_id": org.id,
        "endpoint": "chat.completions",
        "status": 200,
        "input_tokens": 100,
        "cost": Decimal("0.001"),
        "created_at": at,
    }
    write_usage_payloads([serialise_usage(record)])


def reconcile(since):
    out = StringIO()
    call_command("reconcile_usage", "--since", since.isoformat(), stdout=out)
    return out.getvalue().splitlines()


def test_a_ledger_that_adds_up_reports_no_drift(org):
    for n in range(3):
        write(org, n, START + timedelta(minutes=10 * n))
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        roll_up_usage()
        lines = reconcile(START)

    assert lines[0] == "No drift."
    assert any(line.split()[:2] == ["rows", "3"] and "300" in line for line in lines)


def test_a_row_that_missed_the_roll_ups_is_drift_listed_first(org):
    write(org, 1, START + timedelta(minutes=5))
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        roll_up_usage()
        # Written behind the writer's back: its hour is never marked for a new roll-up.
        UsageRecord.objects.create(
            organization=org,
            request_id="sneaked",
            endpoint="chat.completions",
            status=200,
            input_tokens=7,
            created_at=floor_hour(START) + timedelta(minutes=30),
        )
        out = StringIO()
        with pytest.raises(CommandError, match="drift"):
            call_command("reconcile_usage", "--since", START.date().isoformat(), stdout=out)

    first = out.getvalue().splitlines()[0]
    assert first.startswith("DRIFT: rows") and "hourly roll-ups" in first


def test_a_bad_since_is_refused():
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("reconcile_usage", "--since", "yesterday")
