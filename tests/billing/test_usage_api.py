from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from analytics.models import UsageRecord
from tests.clock import days_in_month, month_start, next_month

pytestmark = pytest.mark.django_db
NOW = next_month(16)  # 15 days of the month have passed


def record(org, n, **fields):
    return UsageRecord.objects.create(
        organization=org,
        request_id=f"u-{org.pk}-{n}",
        created_at=NOW - timedelta(hours=n + 1),
        endpoint="chat.completions",
        status=200,
        **fields,
    )


@time_machine.travel(NOW, tick=False)
def test_usage_shows_this_periods_totals_against_the_plan(org, owner, client_for, plans):
    for n in range(100):
        record(org, n, input_tokens=200, output_tokens=50, cost=Decimal("0.00012345"))
    body = client_for(owner).get("/api/billing/usage").json()
    assert body["plan"] == "free"
    assert body["period_start"].startswith(month_start(NOW).strftime("%Y-%m-%dT00:00:00"))
    assert (body["requests"], body["tokens"]) == (100, 25_000)
    assert body["cost"] == "0.012345"
    assert body["percent"] == {"requests": "10.0", "tokens": "50.0"}
    assert body["projected"]["requests"] == round(100 * days_in_month(NOW) / 15)


@time_machine.travel(NOW, tick=False)
def test_viewers_see_usage_of_their_own_organisation_only(org, viewer, outsider, client_for, plans):
    record(org, 1, input_tokens=10)
    assert client_for(viewer).get("/api/billing/usage").json()["requests"] == 1
    assert client_for(outsider).get("/api/billing/usage").json()["requests"] == 0


def test_usage_needs_a_login(api_client, plans):
    assert api_client.get("/api/billing/usage").status_code == 401
