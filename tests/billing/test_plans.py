from __future__ import annotations

from decimal import Decimal

import pytest

from billing.limits import FREE, limits_for_plan
from billing.models import Plan

pytestmark = pytest.mark.django_db


def test_migration_seeds_the_four_plans_of_the_design(plans):
    rows = {
        p.slug: (p.price_per_month, p.monthly_requests, p.monthly_tokens, p.overage)
        for p in Plan.objects.all()
    }
    assert rows == {
        "free": (Decimal("0.00"), 1_000, 50_000, "block"),
        "starter": (Decimal("29.00"), 10_000, 500_000, "bill"),
        "professional": (Decimal("99.00"), 50_000, 2_500_000, "bill"),
        "enterprise": (Decimal("299.00"), 200_000, 10_000_000, "bill"),
    }


def test_limits_come_from_the_plan_row(plans):
    limits = limits_for_plan("professional")
    assert (limits.plan_name, limits.monthly_requests, limits.monthly_tokens) == (
        "Professional",
        50_000,
        2_500_000,
    )
    assert limits.overage == "bill"
    assert limits.requests_per_minute == 300


def test_staff_edits_apply_without_a_restart(plans):
    assert limits_for_plan("starter").monthly_requests == 10_000
    plan = Plan.objects.get(slug="starter")
    plan.monthly_requests = 12_345
    plan.allowed_models = ["gpt-4o-mini"]
    plan.save()
    limits = limits_for_plan("starter")
    assert limits.monthly_requests == 12_345
    assert limits.allows_model("gpt-4o-mini") and not limits.allows_model("gpt-4o")


def test_unknown_plan_gets_the_free_limits(plans):
    assert limits_for_plan("platinum").plan == "free"
    assert limits_for_plan("platinum").monthly_requests == 1_000


def test_without_any_plan_rows_the_built_in_free_limits_apply(db):
    assert limits_for_plan("starter") == FREE


def test_cached_limits_cost_no_query(plans, django_assert_num_queries):
    limits_for_plan("free")
    with django_assert_num_queries(0):
        for _ in range(100):
            limits_for_plan("enterprise")


def test_plans_endpoint_lists_public_plans_and_says_stripe_is_off(plans, api_client):
    response = api_client.get("/api/billing/plans")
    assert response.status_code == 200
    body = response.json()
    assert body["stripe_configured"] is False
    assert [p["slug"] for p in body["plans"]] == ["free", "starter", "professional", "enterprise"]
    assert body["plans"][1]["price_per_month"] == "29.00"
