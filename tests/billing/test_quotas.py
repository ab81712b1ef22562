from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import time_machine

from analytics.models import UsageRecord
from analytics.rollups import roll_up_usage
from billing.quotas import check_monthly_allowance
from tests.clock import month_start, next_month, next_month_start

pytestmark = pytest.mark.django_db
NOW = next_month(20, 12)
_ids = itertools.count()


def add_usage(org, count, at=NOW - timedelta(days=1), status=200, tokens=10):
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            request_id=f"req-{next(_ids)}",
            created_at=at,
            endpoint="chat.completions",
            requested_model="gpt-4o-mini",
            input_tokens=tokens,
            output_tokens=0,
            status=status,
        )
        for _ in range(count)
    )


@time_machine.travel(NOW, tick=False)
def test_free_org_under_its_monthly_requests_is_admitted(org, plans):
    add_usage(org, 999)
    assert check_monthly_allowance(org) is None


@time_machine.travel(NOW, tick=False)
def test_the_1001st_free_request_of_the_month_is_refused_naming_the_plan(org, plans):
    add_usage(org, 1_000)
    refusal = check_monthly_allowance(org)
    assert refusal is not None
    assert refusal.status == 429
    assert refusal.plan == "free" and refusal.limit == "requests"
    assert "Free plan" in refusal.message and "1,000 requests" in refusal.message
    # Retry-After points at the first of next month.
    assert refusal.retry_after == int((next_month_start(NOW) - NOW).total_seconds())


@time_machine.travel(NOW, tick=False)
def test_the_same_answer_once_usage_is_rolled_up(org, plans):
    add_usage(org, 600, at=NOW - timedelta(days=3))
    add_usage(org, 400, at=NOW - timedelta(minutes=2))  # not rolled up yet: read raw
    roll_up_usage(NOW)
    assert check_monthly_allowance(org).limit == "requests"


@time_machine.travel(NOW, tick=False)
def test_refused_requests_do_not_use_up_the_allowance(org, plans):
    add_usage(org, 999)
    add_usage(org, 50, status=429, tokens=0)
    assert check_monthly_allowance(org) is None


@time_machine.travel(NOW, tick=False)
def test_last_months_usage_does_not_count(org, plans):
    add_usage(org, 1_000, at=month_start(NOW) - timedelta(minutes=1))
    assert check_monthly_allowance(org) is None


@time_machine.travel(NOW, tick=False)
def test_monthly_tokens_are_a_limit_too(org, plans):
    add_usage(org, 5, tokens=10_000)
    refusal = check_monthly_allowance(org)
    assert refusal.limit == "tokens" and "50,000 tokens" in refusal.message


@time_machine.travel(NOW, tick=False)
def test_plans_that_bill_overage_are_never_refused(org, plans):
    org.plan = "starter"
    org.save()
    add_usage(org, 20, tokens=100_000)
    assert check_monthly_allowance(org) is None


@time_machine.travel(NOW, tick=False)
def test_other_organisations_usage_does_not_count(org, other_org, plans):
    add_usage(other_org, 1_000)
    assert check_monthly_allowance(org) is None
