from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import time_machine
from prometheus_client import REGISTRY

from billing.admission import admit, release, settle, to_nano
from billing.limits import FREE, PlanLimits
from llm.redis_clients import close_redis, get_sync_redis
from tests.clock import month_start, next_month, next_month_start
from tests.stores import DEAD_REDIS_URL, TEST_REDIS_URL, use_redis

MOMENT = next_month(26, 12) + timedelta(seconds=45)  # 15 s before the minute ends
NOW = MOMENT.timestamp()
NEXT_MONTH = next_month_start(MOMENT).timestamp()
UNLIMITED = PlanLimits(plan="test", plan_name="Test")


def plan(**limits) -> PlanLimits:
    return PlanLimits(plan="test", plan_name="Test", **limits)


@dataclass
class Overrides:
    rate_limit_per_minute: int | None = None
    rate_limit_per_hour: int | None = None
    rate_limit_per_day: int | None = None
    tokens_per_minute: int | None = None
    monthly_budget_usd: Decimal | None = None


@dataclass
class Used:
    requests: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    key_cost: Decimal = Decimal(0)


@pytest.fixture(autouse=True)
def _patient_redis(settings):
    # These tests count admissions exactly: on a loaded machine a burst of concurrent scripts
    # must not trip the production timeout and fall back to the per-process share.
    settings.GATEWAY_REDIS_TIMEOUT_SECONDS = 10.0


async def admit_many(n, *args, **kwargs):
    return await asyncio.gather(*(admit(*args, **kwargs) for _ in range(n)))


def split(results):
    """(admitted, refused): concurrent calls on Redis finish in any order."""
    return [r for r in results if r.admitted], [r for r in results if not r.admitted]


async def test_concurrent_requests_against_a_limit_of_l_let_exactly_l_through(store):
    results = await admit_many(50, 1, 7, plan(requests_per_minute=10), now=NOW)

    assert sum(r.admitted for r in results) == 10
    refused = [r for r in results if not r.admitted]
    assert {r.limit_name for r in refused} == {"requests per minute of the Test plan"}
    assert {r.remaining for r in refused} == {0}


@pytest.mark.parametrize("skew_days", [-400, 400])
async def test_windows_count_exactly_whatever_the_app_clock_says(store, skew_days):
    # Key lifetimes are relative, so an app clock a year off Redis's still counts exactly.
    skewed = time.time() + skew_days * 86400
    results = await admit_many(20, 1, 7, plan(requests_per_minute=10), now=skewed)

    assert sum(r.admitted for r in results) == 10


async def test_a_refusal_waits_until_the_window_has_slid_past_the_requests(store):
    first = await admit(1, 7, plan(requests_per_minute=2), now=NOW)
    await admit(1, 7, plan(requests_per_minute=2), now=NOW)
    third = await admit(1, 7, plan(requests_per_minute=2), now=NOW)

    # NOW is on a whole second: its one-second bucket leaves the window 61 s later.
    assert first.admitted and first.limit == 2 and first.remaining == 1 and first.reset == 61
    assert not third.admitted
    assert third.kind == "rate_limit"
    assert third.retry_after == 61
    assert third.headers == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "61",
        "Retry-After": "61",
    }
    assert not (await admit(1, 7, plan(requests_per_minute=2), now=NOW + 60)).admitted
    assert (await admit(1, 7, plan(requests_per_minute=2), now=NOW + 61)).admitted


async def test_no_burst_of_twice_the_limit_across_a_minute_boundary(store):
    limits = plan(requests_per_minute=60)
    before = await admit_many(60, 1, 7, limits, now=NOW)  # 15 s before the minute ends
    after = await admit_many(60, 1, 7, limits, now=NOW + 16)  # 1 s into the next minute
    later = await admit_many(60, 1, 7, limits, now=NOW + 61)

    assert [sum(r.admitted for r in rs) for rs in (before, after, later)] == [60, 0, 60]


async def test_a_window_lives_while_its_newest_bucket_counts(store):
    limits = plan(requests_per_minute=10)
    await admit(1, 7, limits, now=NOW)
    client = get_sync_redis()
    [key] = client.keys("gw:{o:1}:rl:*")
    assert 61_000 < client.pttl(key) <= 62_000  # its one-second buckets count for 61 s, + 1 s
    client.pexpire(key, 5_000)  # as if 57 s had passed
    await admit(1, 7, limits, now=NOW + 0.5)  # the same bucket: the lifetime is left as it is
    assert client.pttl(key) <= 5_000
    await admit(1, 7, limits, now=NOW + 1)  # a new bucket counts for the next 61 s
    assert client.pttl(key) > 61_000
    assert (await admit(1, 7, limits, now=NOW + 1)).remaining == 6


async def test_a_refusal_that_slides_a_window_leaves_its_count_right(store):
    limits = plan(tokens_per_minute=10)
    assert (await admit(1, 7, limits, None, 5, now=NOW)).admitted
    assert (await admit(1, 7, limits, None, 5, now=NOW + 30)).admitted
    # NOW's bucket has left the window: 5 tokens count, so 6 more are refused...
    refused = await admit(1, 7, limits, None, 6, now=NOW + 61)
    assert not refused.admitted and refused.remaining == 5 and refused.retry_after == 30
    # ...and 5 more fit, then no more.
    assert (await admit(1, 7, limits, None, 5, now=NOW + 62)).admitted
    assert not (await admit(1, 7, limits, None, 1, now=NOW + 62)).admitted


async def test_a_window_remembers_its_oldest_held_bucket_after_a_quiet_spell(store):
    limits = plan(requests_per_minute=10)
    await admit(1, 7, limits, now=NOW)
    await admit(1, 7, limits, now=NOW + 30)  # 29 quiet seconds: no bucket between
    client = get_sync_redis()
    [key] = client.keys("gw:{o:1}:rl:*")

    # NOW's bucket leaves; the oldest that counts is NOW + 30's: until it leaves, 30 s.
    later = await admit(1, 7, limits, now=NOW + 61)
    assert later.remaining == 8 and later.reset == 30
    assert int(client.hget(key, "o")) == int(NOW) + 30
    refused = await admit(1, 7, plan(requests_per_minute=2), now=NOW + 62)
    assert not refused.admitted and refused.retry_after == 29
    assert (await admit(1, 7, limits, now=NOW + 62)).remaining == 7


async def test_windows_run_on_the_stores_own_clock(store):
    # Without `now` the script reads the store's TIME: the app's clock can be a year off.
    with time_machine.travel(time.time() + 365 * 86400, tick=True):
        results = await admit_many(20, 1, 7, plan(requests_per_minute=10, tokens_per_minute=500))
        held = next(r for r in results if r.admitted)
        await settle(held.reservation, 0, Decimal(0))

    assert sum(r.admitted for r in results) == 10
    if store == "redis":  # the embedded store's clock is the process's own
        seconds, micros = redis.Redis.from_url(TEST_REDIS_URL).time()
        assert abs(held.reservation.admitted_at - (seconds + micros / 1e6)) < 60


@pytest.mark.parametrize(
    ("limits", "name", "period"),
    [
        ({"requests_per_hour": 1}, "requests per hour of the Test plan", 3600),
        ({"requests_per_day": 1}, "requests per day of the Test plan", 86400),
    ],
)
async def test_hour_and_day_windows_refuse_for_their_whole_length(store, limits, name, period):
    assert (await admit(1, None, plan(**limits), now=NOW)).admitted
    refused = await admit(1, None, plan(**limits), now=NOW + 30)

    assert (refused.kind, refused.limit_name) == ("rate_limit", name)
    # A whole period after the request, and at most one bucket (1/60 of it) later.
    assert period <= refused.retry_after + 30 <= period + period // 60
    assert not (await admit(1, None, plan(**limits), now=NOW + period - 1)).admitted
    assert (await admit(1, None, plan(**limits), now=NOW + 30 + refused.retry_after)).admitted


async def test_a_key_override_beats_the_plan_for_that_key_only(store):
    limits = plan(requests_per_minute=20)
    strict = Overrides(rate_limit_per_minute=3)
    results = await admit_many(5, 1, 7, limits, strict, now=NOW)

    admitted, refused = split(results)
    assert len(admitted) == 3
    assert refused[0].limit_name == "requests per minute of this API key"
    assert admitted[0].limit == 3
    assert (await admit(1, 8, limits, None, now=NOW)).admitted


async def test_a_key_override_does_not_lift_the_organisations_plan(store):
    results = await admit_many(5, 1, 7, plan(requests_per_minute=2), Overrides(100), now=NOW)

    admitted, refused = split(results)
    assert len(admitted) == 2
    assert refused[0].limit_name == "requests per minute of the Test plan"


async def test_tokens_per_minute_hold_the_estimate_then_count_the_actual_tokens(store):
    limits = plan(tokens_per_minute=1000)
    first = await admit(1, 7, limits, None, 600, now=NOW)
    second = await admit(1, 7, limits, None, 600, now=NOW)

    assert first.admitted and not second.admitted
    assert second.limit_name == "tokens per minute of the Test plan"
    assert second.remaining == 400
    await settle(first.reservation, 100, Decimal(0))
    assert (await admit(1, 7, limits, None, 600, now=NOW)).admitted
    assert not (await admit(1, 7, limits, None, 301, now=NOW)).admitted


async def test_a_changed_plan_applies_from_the_next_admission(store):
    assert (await admit(1, 7, plan(requests_per_minute=5), now=NOW)).admitted
    assert (await admit(1, 7, plan(requests_per_minute=5), now=NOW)).admitted

    refused = await admit(1, 7, plan(requests_per_minute=2), now=NOW)
    assert refused.kind == "rate_limit" and refused.limit == 2
    pro = PlanLimits(plan="test", plan_name="Pro", requests_per_minute=2)
    assert (await admit(1, 7, pro, now=NOW)).limit_name == "requests per minute of the Pro plan"
    assert (await admit(1, 7, plan(requests_per_minute=5), now=NOW)).admitted


async def test_a_key_override_changed_in_place_applies_from_the_next_admission(store):
    key = Overrides()  # the same row, edited: the override is read at every admission
    assert (await admit(1, 7, UNLIMITED, key, now=NOW)).admitted
    key.rate_limit_per_minute = 1
    assert (await admit(1, 7, UNLIMITED, key, now=NOW)).limit == 1
    refused = await admit(1, 7, UNLIMITED, key, now=NOW)
    assert refused.limit_name == "requests per minute of this API key"
    key.rate_limit_per_minute = None
    key.monthly_budget_usd = Decimal("0.01")
    assert (await admit(1, 7, UNLIMITED, key, 0, Decimal("0.01"), now=NOW)).admitted
    assert (await admit(1, 7, UNLIMITED, key, 0, Decimal("0.01"), now=NOW)).kind == "budget"


async def test_a_key_tokens_per_minute_override_applies(store):
    results = await admit_many(3, 1, 7, UNLIMITED, Overrides(tokens_per_minute=250), 100, now=NOW)

    admitted, refused = split(results)
    assert (len(admitted), len(refused)) == (2, 1)
    assert refused[0].limit_name == "tokens per minute of this API key"


async def test_the_monthly_request_quota_refusal_names_the_plan(store):
    results = await admit_many(3, 1, 7, replace(FREE, monthly_requests=2))

    admitted, (refused,) = split(results)
    assert len(admitted) == 2
    assert refused.kind == "quota"
    assert refused.limit_name == "monthly requests of the Free plan"
    assert "monthly requests of the Free plan" in refused.message


async def test_monthly_quotas_wait_until_next_month_and_count_tokens(store):
    limits = plan(monthly_tokens=1000)
    assert (await admit(1, 7, limits, None, 900, now=NOW)).admitted
    refused = await admit(1, 7, limits, None, 200, now=NOW)

    assert (refused.kind, refused.limit_name) == ("quota", "monthly tokens of the Test plan")
    assert refused.retry_after == int(NEXT_MONTH - NOW)
    assert (await admit(1, 7, limits, None, 200, now=NEXT_MONTH)).admitted


async def test_a_plan_billing_overage_is_metered_not_blocked(store):
    limits = plan(monthly_requests=1, overage="bill")

    assert all(r.admitted for r in await admit_many(3, 1, 7, limits, now=NOW))


async def test_a_new_month_starts_from_what_the_database_says_was_used(store):
    calls = []

    async def load_usage(org_id, key_id, month_start):
        calls.append((org_id, key_id, month_start))
        return Used(requests=4, tokens=0, cost=Decimal("0.95"), key_cost=Decimal("0.50"))

    limits = plan(monthly_requests=6, monthly_budget_usd=Decimal("1.00"))
    kw = {"load_usage": load_usage, "now": NOW}
    first = await admit(1, 7, limits, None, 0, Decimal("0.05"), **kw)
    second = await admit(1, 7, limits, None, 0, Decimal("0.01"), **kw)

    assert first.admitted
    assert (second.kind, second.limit_name) == ("budget", "monthly budget of the organisation")
    assert calls == [(1, 7, month_start(MOMENT))]
    await settle(first.reservation, 0, Decimal("0.04"))
    assert (await admit(1, 7, limits, None, 0, Decimal("0.01"), **kw)).admitted
    assert (await admit(1, 7, limits, None, 0, Decimal(0), **kw)).kind == "quota"
    assert len(calls) == 1


async def test_requests_finding_their_month_missing_at_once_share_one_load(store):
    calls = []

    async def load_usage(org_id, key_id, month_start):
        calls.append((org_id, key_id))
        await asyncio.sleep(0.05)  # a database query: every other request arrives meanwhile
        return Used(requests=2, tokens=0, cost=Decimal(0), key_cost=Decimal(0))

    limits = plan(monthly_requests=5)
    results = await admit_many(6, 1, 7, limits, None, 0, Decimal(0), load_usage=load_usage, now=NOW)

    assert calls == [(1, 7)]
    admitted, refused = split(results)
    assert (len(admitted), len(refused)) == (3, 3)  # 2 used before, 3 more fit the quota of 5


async def test_the_organisation_budget_holds_the_worst_case_and_settle_frees_the_rest(store):
    limits = plan(monthly_budget_usd=Decimal("1.00"))
    held = await admit_many(5, 1, 7, limits, None, 0, Decimal("0.30"), now=NOW)

    admitted, refused = split(held)
    assert len(admitted) == 3
    assert refused[0].kind == "budget" and refused[0].limit is None
    await settle(admitted[0].reservation, 10, Decimal("0.10"))
    assert (await admit(1, 7, limits, None, 0, Decimal("0.30"), now=NOW)).admitted
    assert not (await admit(1, 7, limits, None, 0, Decimal("0.00000001"), now=NOW)).admitted


async def test_a_key_budget_limits_that_key_and_not_its_siblings(store):
    strict = Overrides(monthly_budget_usd=Decimal("0.50"))
    results = await admit_many(3, 1, 7, UNLIMITED, strict, 0, Decimal("0.20"), now=NOW)

    admitted, refused = split(results)
    assert (len(admitted), len(refused)) == (2, 1)
    assert refused[0].limit_name == "monthly budget of this API key"
    assert (await admit(1, 8, UNLIMITED, None, 0, Decimal("0.20"), now=NOW)).admitted


async def test_release_gives_the_month_back_but_not_the_minute(store):
    limits = plan(requests_per_minute=2, monthly_requests=2, monthly_tokens=100)
    held = await admit(1, 7, limits, None, 100, now=NOW)
    await release(held.reservation)
    again = await admit(1, 7, limits, None, 100, now=NOW)
    third = await admit(1, 7, limits, None, 0, now=NOW + 1)

    assert again.admitted
    assert (third.kind, third.limit_name) == ("rate_limit", "requests per minute of the Test plan")


async def test_settling_twice_counts_once(store):
    limits = plan(monthly_tokens=100)
    held = await admit(1, 7, limits, None, 10, now=NOW)
    await settle(held.reservation, 50, Decimal(0))
    await settle(held.reservation, 50, Decimal(0))

    assert (await admit(1, 7, limits, None, 50, now=NOW)).admitted


async def test_a_crashed_processs_reservation_stops_counting_when_it_expires(store, settings):
    settings.GATEWAY_RESERVATION_TTL_SECONDS = 60
    limits = plan(monthly_budget_usd=Decimal("1.00"))
    await admit(1, 7, limits, None, 0, Decimal("1.00"), now=NOW)  # never settled

    assert not (await admit(1, 7, limits, None, 0, Decimal("0.01"), now=NOW + 59)).admitted
    assert (await admit(1, 7, limits, None, 0, Decimal("1.00"), now=NOW + 61)).admitted


async def test_concurrent_reservations_never_exceed_the_budget(store):
    limits = plan(monthly_budget_usd=Decimal("1.00"))
    results = await admit_many(50, 1, 7, limits, None, 0, Decimal("0.10"), now=NOW)

    assert sum(r.admitted for r in results) == 10


def test_money_is_held_in_whole_nano_dollars_rounded_up():
    assert to_nano(Decimal("0.123456789")) == 123_456_789
    assert to_nano(Decimal("0.0000000001")) == 1
    assert to_nano(Decimal("1234.5")) == 1_234_500_000_000


async def test_redis_shares_limits_exactly_between_separate_connections(settings):
    use_redis(settings)
    limits = plan(requests_per_minute=10, monthly_budget_usd=Decimal("1.00"))

    async def one_connection():
        # A fresh event loop per thread gets its own client and connections.
        return await asyncio.to_thread(asyncio.run, admit_many_and_close(10, limits))

    totals = await asyncio.gather(*(one_connection() for _ in range(5)))
    assert sum(totals) == 10


async def admit_many_and_close(n, limits):
    results = await admit_many(n, 1, 7, limits, None, 0, Decimal("0.05"), now=NOW)
    await close_redis()
    return sum(r.admitted for r in results)


WORKER = """
import asyncio, sys, time
import django
django.setup()
from decimal import Decimal
from billing.admission import admit
from billing.limits import PlanLimits
from llm.redis_clients import close_redis

async def main(start_at):
    limits = PlanLimits(plan="test", plan_name="Test", monthly_budget_usd=Decimal("1.00"))
    await asyncio.sleep(max(0, start_at - time.time()))
    results = await asyncio.gather(
        *(admit(1, 7, limits, None, 100, Decimal("0.10")) for _ in range(10))
    )
    await close_redis()
    print(sum(r.admitted for r in results))

asyncio.run(main(float(sys.argv[1])))
"""


def test_separate_processes_cannot_overshoot_the_budget(settings):
    use_redis(settings)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "REDIS_URL": TEST_REDIS_URL,
        "PYTHONPATH": str(root),
    }
    start_at = str(time.time() + 3)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, start_at], env=env, cwd=root, stdout=subprocess.PIPE
        )
        for _ in range(5)
    ]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]

    assert all(worker.returncode == 0 for worker in workers)
    assert sum(int(out) for out in outputs) == 10
    month = datetime.now(UTC).strftime("%Y%m")
    held = get_sync_redis().hget(f"gw:{{o:1}}:m:{month}", "r:usd")
    assert int(held) == 10 * 100_000_000


def unavailable_count(outcome):
    labels = {"feature": "admission", "outcome": outcome}
    return REGISTRY.get_sample_value("gateway_redis_unavailable_total", labels) or 0


async def test_redis_down_enforces_this_processes_share_of_each_limit(settings):
    settings.REDIS_URL = DEAD_REDIS_URL
    settings.GATEWAY_EXPECTED_PROCESSES = 2
    before = unavailable_count("process_share")

    results = [await admit(1, 7, plan(requests_per_minute=60), now=NOW) for _ in range(100)]
    for result in results:
        await settle(result.reservation, 10, Decimal("0.01"))
    await close_redis()

    admitted, refused = split(results)
    assert len(admitted) == 30  # 60 per minute over two processes: 30 here
    assert admitted[0].limit == 30 and admitted[0].reservation is None
    assert refused[0].kind == "rate_limit" and refused[0].retry_after >= 1
    assert unavailable_count("process_share") == before + 100


async def test_redis_down_keeps_a_zero_limit_at_zero(settings):
    settings.REDIS_URL = DEAD_REDIS_URL

    result = await admit(1, 7, plan(requests_per_minute=0), now=NOW)
    await close_redis()

    assert not result.admitted and result.kind == "rate_limit"


async def test_redis_down_refuses_when_set_to_fail_closed(settings):
    settings.REDIS_URL = DEAD_REDIS_URL
    settings.GATEWAY_RATE_LIMIT_FAIL_OPEN = False
    before = unavailable_count("fail_closed")

    result = await admit(1, 7, UNLIMITED, now=NOW)
    await close_redis()

    assert not result.admitted
    assert (result.kind, result.retry_after) == ("unavailable", 1)
    assert unavailable_count("fail_closed") == before + 1


async def test_settle_after_redis_went_down_does_not_raise(settings):
    use_redis(settings)
    held = await admit(1, 7, UNLIMITED, now=NOW)
    await close_redis()
    settings.REDIS_URL = DEAD_REDIS_URL
    before = unavailable_count("settle_lost")

    await settle(held.reservation, 1, Decimal("0.01"))
    await close_redis()

    assert unavailable_count("settle_lost") == before + 1


def test_the_month_is_the_one_holding_each_moment_asked_about_in_any_order():
    from billing.limit_checks import month_bounds
    from billing.periods import period_containing

    next_year = datetime.now(UTC).year + 1
    end_of_year = datetime(next_year, 1, 1, tzinfo=UTC).timestamp()  # the coming year boundary
    moments = [end_of_year - 0.001, end_of_year, end_of_year - 86400 * 40, end_of_year + 1]
    for now in moments + moments[::-1]:
        name, start, end = month_bounds(now)
        first, after = period_containing(datetime.fromtimestamp(now, UTC))
        assert (name, start, end) == (first.strftime("%Y%m"), first, after.timestamp())
    assert month_bounds(end_of_year - 0.001)[0] == f"{next_year - 1}12"
    assert month_bounds(end_of_year)[0] == f"{next_year}01"
