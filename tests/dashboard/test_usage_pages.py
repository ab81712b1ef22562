"""Overview, analytics (with CSV) and the request log."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from analytics.rollups import floor_hour, get_fill_end, roll_up_usage
from organizations.api_keys import mint_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    """A frozen moment in the middle of an hour, relative to today."""
    moment = floor_hour(timezone.now()) + timedelta(minutes=30)
    with time_machine.travel(moment, tick=False):
        yield moment


def test_overview_without_traffic_shows_the_first_call_to_make(browser, owner):
    html = browser(owner).get("/dashboard/").content.decode()
    assert "Make your first request" in html
    assert "curl http://testserver/v1/chat/completions" in html
    assert 'OpenAI(base_url="http://testserver/v1"' in html
    assert 'href="/dashboard/keys/"' in html


def test_overview_totals_join_the_rollups_and_the_newest_records(
    browser, owner, org, other_org, record, now
):
    moments = [now - timedelta(hours=hours) for hours in (30, 5, 3, 2)]
    moments.append(now - timedelta(minutes=1))
    for hours_ago in (30, 5):  # rolled up below
        record(org, created_at=now - timedelta(hours=hours_ago), latency_ms=100)
    record(
        org,
        created_at=now - timedelta(hours=3),
        status=502,
        error_class="upstream_error",
        input_tokens=0,
        output_tokens=0,
        cost=Decimal(0),
        latency_ms=900,
    )
    record(org, created_at=now - timedelta(hours=2), cache_hit=True, cost=Decimal(0))
    record(other_org, created_at=now - timedelta(hours=2), input_tokens=99_999)
    roll_up_usage(now - timedelta(hours=2, minutes=30))
    assert get_fill_end() < now - timedelta(hours=2)
    record(org, created_at=now - timedelta(minutes=1), latency_ms=300)  # read raw
    html = browser(owner).get("/dashboard/").content.decode()
    stats = re.sub(r"\s+", " ", html[html.index('id="overview-stats"') :])
    assert "Requests</dt><dd>5<" in stats
    assert "Tokens</dt><dd>480<" in stats  # 4 successful calls of 100 + 20
    assert "Cost</dt><dd>$0.000081<" in stats  # 3 paid calls of $0.000027
    assert "Success rate</dt><dd>80.0%<" in stats
    assert "Cache hit rate</dt><dd>20.0%<" in stats
    assert "Latency p50 / p95</dt><dd>250 ms<" in stats and "p95 900 ms" in stats
    series = re.search(r'id="usage-series"[^>]*>(.*?)</script>', html, re.S)[1]
    # Every day of the chart without one of these records shows zero (how many depends on the
    # hour the test runs: the records span two or three calendar days).
    busy_days = len({moment.date() for moment in moments})
    days = json.loads(series)
    assert sum(day["requests"] for day in days) == 5
    assert sum(day["requests"] == 0 for day in days) == len(days) - busy_days >= 27


def test_analytics_breaks_down_by_model_provider_error_and_key(browser, owner, org, record, now):
    key, _ = mint_api_key(org, name="batch", created_by=owner)
    record(org, requested_model="gpt-4o-mini", provider="openai", api_key=key, latency_ms=100)
    record(org, requested_model="small", provider="groq", latency_ms=300, cost=Decimal("0.5"))
    record(
        org,
        requested_model="small",
        provider="",
        status=429,
        error_class="rate_limit_exceeded",
        cost=Decimal(0),
    )
    roll_up_usage(now)
    client = browser(owner)
    html = client.get("/dashboard/analytics/").content.decode()
    by_model = html[html.index('id="cost-by-model"') : html.index('id="latency-by-provider"')]
    assert by_model.index("small") < by_model.index("gpt-4o-mini")  # dearest first
    by_provider = html[html.index('id="latency-by-provider"') : html.index('id="errors-by-class"')]
    assert "groq" in by_provider and "300 ms" in by_provider
    errors = html[html.index('id="errors-by-class"') : html.index('id="usage-by-key"')]
    assert "rate_limit_exceeded" in errors and "33.3%" in errors
    assert "batch" in html[html.index('id="usage-by-key"') :]
    filtered = client.get("/dashboard/analytics/", {"provider": "groq"}).content.decode()
    assert "Requests</dt><dd>1<" in re.sub(r"\s+", " ", filtered)


def test_analytics_exports_csv(browser, owner, org, record, now):
    key, _ = mint_api_key(org, name="batch", created_by=owner)
    record(org, requested_model="gpt-4o-mini", api_key=key)
    record(org, requested_model="gpt-4o-mini", api_key=key)
    response = browser(owner).get("/dashboard/analytics/", {"format": "csv"})
    assert response["Content-Type"] == "text/csv"
    assert 'filename="usage-acme-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    assert rows[0]["model"] == "gpt-4o-mini" and rows[0]["requests"] == "2"
    assert rows[0]["cost_usd"] == "0.00005400" and rows[0]["input_tokens"] == "200"
    assert rows[0]["api_key"] == "batch" and rows[0]["api_key_id"] == str(key.pk)


def test_analytics_rejects_a_backwards_range_next_to_the_field(browser, owner):
    today = timezone.now().date()
    response = browser(owner).get(
        "/dashboard/analytics/", {"start": today.isoformat(), "end": (today - timedelta(days=3))}
    )
    assert response.status_code == 400
    assert 'id="id_start_error"><li>The start must be on or before the end.' in (
        response.content.decode()
    )


def test_the_request_log_pages_newest_first_with_htmx(browser, owner, org, record, now):
    for n in range(60):
        record(org, created_at=now - timedelta(minutes=n), request_id=f"log-{n:02d}")
    client = browser(owner)
    html = client.get("/dashboard/requests/").content.decode()
    links = re.findall(r'href="/dashboard/requests/(\d+)/"', html)
    assert len(links) == 50
    older = re.search(r'id="older" href="\?([^"]+)"', html)[1].replace("&amp;", "&")
    partial = client.get(
        f"/dashboard/requests/?{older}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="request-log"
    )
    body = partial.content.decode()
    assert "<html" not in body and 'id="request-log"' in body
    assert len(re.findall(r'href="/dashboard/requests/(\d+)/"', body)) == 10
    assert 'id="older"' not in body


def test_the_request_log_filters_by_status_and_model(browser, owner, org, record, now):
    record(org, requested_model="gpt-4o-mini")
    failed = record(org, requested_model="small", status=502, error_class="upstream_error")
    html = browser(owner).get("/dashboard/requests/", {"status": "error"}).content.decode()
    assert re.findall(r'href="/dashboard/requests/(\d+)/"', html) == [str(failed.pk)]


def test_a_request_shows_route_tokens_cost_and_timing(browser, owner, org, record):
    shown = record(
        org,
        attempts=2,
        cached_input_tokens=40,
        reasoning_tokens=7,
        outcome="served",
        billing_reason="reported",
        ttft_ms=80,
        upstream_ms=200,
        price_version="gpt-4o-mini@2024-07-18",
    )
    html = re.sub(
        r"\s+", " ", browser(owner).get(f"/dashboard/requests/{shown.pk}/").content.decode()
    )
    for text in (
        "<dt>Attempts</dt><dd>2</dd>",
        "<dt>Cached input tokens</dt><dd>40</dd>",
        "<dt>Output tokens</dt><dd>20</dd>",
        "<dt>Cost</dt><dd>$0.000027</dd>",
        "<dt>Time to first token</dt><dd>80 ms</dd>",
        "<dt>Reasoning tokens (in output)</dt><dd>7</dd>",
        "<dt>Outcome</dt><dd>served</dd>",
        "<dt>Billing reason</dt><dd>reported</dd>",
        "gpt-4o-mini@2024-07-18",
    ):
        assert text in html
    assert "Cache-write tokens" not in html  # classes the request does not have
    assert "Prompt logging is off for Acme" in html


def test_the_usage_pages_cost_the_same_queries_for_more_records(
    browser, owner, org, record, now, constant_queries
):
    record(org)
    keys = [mint_api_key(org, name=f"k{n}", created_by=owner)[0] for n in range(3)]

    def more():
        for n in range(30):
            record(
                org,
                api_key=keys[n % 3],
                requested_model=f"model-{n % 7}",
                created_at=now - timedelta(hours=n),
            )

    client = browser(owner)
    for url in ("/dashboard/", "/dashboard/analytics/", "/dashboard/requests/"):
        assert constant_queries(client, url, more) <= 12, url


def test_the_request_log_filters_by_dates(browser, owner, org, record, now):
    record(org, created_at=now - timedelta(days=3), request_id="old")
    recent = record(org, created_at=now - timedelta(minutes=3), request_id="new")
    html = browser(owner).get("/dashboard/requests/").content.decode()
    assert len(re.findall(r'href="/dashboard/requests/(\d+)/"', html)) == 2
    today = now.date().isoformat()
    html = browser(owner).get("/dashboard/requests/", {"start": today}).content.decode()
    assert re.findall(r'href="/dashboard/requests/(\d+)/"', html) == [str(recent.pk)]


@pytest.mark.parametrize("logging", [True, False])
def test_the_prompt_shows_only_when_the_organisation_keeps_prompts(
    browser, owner, org, record, logging
):
    org.prompt_logging = logging
    org.save()
    shown = record(org, prompt_text="What is the capital of France?")
    html = browser(owner).get(f"/dashboard/requests/{shown.pk}/").content.decode()
    assert ("What is the capital of France?" in html) is logging
