from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import UsageRecord
from organizations.api_keys import mint_api_key

pytestmark = pytest.mark.django_db


def record(org, **fields):
    values = {
        "organization": org,
        "request_id": f"req_{uuid.uuid4().hex}",
        "endpoint": "chat.completions",
        "requested_model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.00000450"),
        "latency_ms": 100,
        "status": 200,
    }
    values.update(fields)
    return UsageRecord.objects.create(**values)


def test_recent_requests_newest_first_with_tokens_and_cost(client_for, viewer, org, other_org):
    old = record(org, created_at=timezone.now() - timedelta(hours=1))
    new = record(org, output_tokens=7)
    record(other_org)  # never shown to org
    data = client_for(viewer).get("/api/dashboard/recent-requests").data
    assert len(data["results"]) == 2 and data["next"] is None
    assert [r["request_id"] for r in data["results"]] == [new.request_id, old.request_id]
    assert data["results"][0]["total_tokens"] == 17
    assert data["results"][0]["cost"] == "0.00000450"


def test_recent_requests_filters(client_for, owner, org, api_key):
    key_row, _ = api_key
    record(org, provider="anthropic", requested_model="claude", api_key=key_row)
    record(org, status=502, error_class="upstream_unavailable")
    client = client_for(owner)
    assert len(client.get("/api/dashboard/recent-requests?provider=anthropic").data["results"]) == 1
    assert len(client.get("/api/dashboard/recent-requests?model=claude").data["results"]) == 1
    assert len(client.get(f"/api/dashboard/recent-requests?key={key_row.pk}").data["results"]) == 1
    assert len(client.get("/api/dashboard/recent-requests?status=5xx").data["results"]) == 1
    assert len(client.get("/api/dashboard/recent-requests?status=error").data["results"]) == 1
    bad = client.get("/api/dashboard/recent-requests?status=oops")
    assert bad.status_code == 400 and "status" in bad.data["fields"]


def test_recent_requests_are_paginated(client_for, owner, org):
    for _ in range(3):
        record(org)
    client = client_for(owner)
    data = client.get("/api/dashboard/recent-requests?page_size=2").data
    assert len(data["results"]) == 2 and data["next"] and "count" not in data
    rest = client.get(data["next"]).data
    assert len(rest["results"]) == 1 and rest["next"] is None
    seen = {r["request_id"] for r in data["results"] + rest["results"]}
    assert len(seen) == 3


def test_analytics_totals_and_breakdowns(client_for, owner, org, api_key):
    key_row, _ = api_key
    record(org, latency_ms=100, api_key=key_row)
    record(org, latency_ms=300, provider="groq", requested_model="llama", cache_hit=True)
    record(org, latency_ms=200, status=429, input_tokens=0, output_tokens=0, cost=Decimal(0))
    data = client_for(owner).get("/api/dashboard/analytics").data
    totals = data["totals"]
    assert totals["requests"] == 3
    assert totals["total_tokens"] == 30
    assert totals["cost"] == "0.00000900"
    assert totals["error_rate"] == round(1 / 3, 4)
    assert totals["cache_hit_rate"] == round(1 / 3, 4)
    assert totals["latency_ms"] == {"p50": 200.0, "p95": 300.0, "p99": 300.0}
    by_provider = {row["provider"]: row["requests"] for row in data["by_provider"]}
    assert by_provider == {"groq": 1, "openai": 2}
    assert {row["key"] for row in data["by_key"]} == {key_row.pk, None}
    assert data["by_day"][0]["day"] == timezone.now().date().isoformat()


def test_analytics_date_range_excludes_outside_and_validates(client_for, owner, org):
    record(org, created_at=timezone.now() - timedelta(days=40))
    record(org)
    client = client_for(owner)
    assert client.get("/api/dashboard/analytics").data["totals"]["requests"] == 1
    bad = client.get("/api/dashboard/analytics?start=2026-02-01&end=2026-01-01")
    assert bad.status_code == 400 and "start" in bad.data["fields"]


def test_api_key_of_the_org_may_read_usage(api_client, org, other_org, owner):
    _, secret = mint_api_key(org, name="reader", created_by=owner)
    record(org)
    record(other_org)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert len(api_client.get("/api/dashboard/recent-requests").data["results"]) == 1
    assert api_client.get("/api/dashboard/organization").data["slug"] == "acme"
    assert [m["email"] for m in api_client.get("/api/dashboard/team-members").data] == [owner.email]


def test_usage_api_requires_authentication(api_client):
    assert api_client.get("/api/dashboard/analytics").status_code == 401


def test_outsider_sees_only_own_usage(client_for, outsider, org):
    record(org)
    assert len(client_for(outsider).get("/api/dashboard/recent-requests").data["results"]) == 0
