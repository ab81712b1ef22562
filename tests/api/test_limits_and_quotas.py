"""Rate limits and plan quotas through the public API, under concurrency."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
import time_machine
from django.utils import timezone

from analytics.models import UsageRecord
from billing.models import Plan

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


@pytest.fixture(autouse=True)
def early_in_a_minute():
    """Windows are aligned to the UTC minute: start each test 5 s into one, so its requests
    never straddle a window boundary."""
    now = time.time()
    with time_machine.travel(now - now % 60 + 60 + 5, tick=True):
        yield


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    """Counters live in the suite's Redis under CI (REDIS_URL) and in the embedded store
    otherwise (emptied before every test): start from zero."""
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()


def post(gateway, key, body=BODY):
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_the_1001st_free_request_of_the_month_is_refused_naming_the_plan(
    gateway, key, upstreams, plans, org
):
    from organizations.models import ApiKey

    key_row = ApiKey.objects.get(organization=org)
    now = timezone.now()
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            api_key=key_row,
            request_id=f"req_{uuid.uuid4().hex}",
            created_at=now,
            endpoint="chat.completions",
            provider="openai",
            status=200,
        )
        for _ in range(999)
    )
    assert post(gateway, key).status_code == 200  # the 1,000th
    refused = post(gateway, key)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert "Free plan" in error["message"] and "monthly requests" in error["message"]
    assert int(refused.headers["retry-after"]) > 0
    assert len(upstreams[0].requests) == 1


def test_a_plan_that_bills_overage_is_not_refused_at_its_monthly_limit(
    gateway, key, upstreams, plans, org
):
    Plan.objects.filter(slug="starter").update(monthly_requests=1)
    org.plan = "starter"
    org.save(update_fields=["plan"])
    assert [post(gateway, key).status_code for _ in range(3)] == [200, 200, 200]


async def test_concurrent_requests_let_exactly_the_limit_through(gateway, key, upstreams, plans):
    from asgiref.sync import sync_to_async

    await sync_to_async(Plan.objects.filter(slug="free").update)(requests_per_minute=5)
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *[
                client.post(
                    f"{gateway}/v1/chat/completions",
                    json=BODY,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for _ in range(20)
            ]
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [429] * 15
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["x-ratelimit-limit"] == "5"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(refused.headers["retry-after"]) <= 61  # a minute, plus at most one bucket
    assert "requests per minute" in refused.json()["error"]["message"]


def test_per_key_override_tightens_the_limit(gateway, upstreams, plans, org, owner):
    from organizations.api_keys import mint_api_key

    _, tight = mint_api_key(org, name="tight", created_by=owner, rate_limit_per_minute=2)
    codes = [post(gateway, tight).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_refused_requests_are_recorded_but_not_billed(gateway, key, upstreams, plans):
    from tests.api.usage import wait_for_usage

    Plan.objects.filter(slug="free").update(requests_per_minute=1)
    post(gateway, key)
    post(gateway, key)
    statuses = sorted((r.status, r.cost) for r in wait_for_usage(2))
    assert [s for s, _ in statuses] == [200, 429]
    assert statuses[1][1] == 0


def test_a_plans_monthly_budget_refuses_requests_once_spent(gateway, key, upstreams, plans, org):
    from decimal import Decimal

    Plan.objects.filter(slug="free").update(monthly_budget_usd=Decimal("0.05"))
    Plan.objects.get(slug="free").save()  # forget the cached plans
    UsageRecord.objects.create(
        organization=org,
        request_id=f"req_{uuid.uuid4().hex}",
        created_at=timezone.now(),
        endpoint="chat.completions",
        status=200,
        cost=Decimal("0.05"),
    )

    refused = post(gateway, key)

    assert refused.status_code == 429
    assert "monthly budget of the organisation" in refused.json()["error"]["message"]
    assert upstreams[0].requests == []
