"""Every admitted request ends in exactly one usage row, billed by the policy of its way out.

The official openai SDK (sync and async) and httpx talk to the live gateway; fake upstreams
report usage numbers the tests choose.
"""

from __future__ import annotations

import asyncio
import json
import random
import textwrap

import httpx
import openai
import pytest

from analytics.models import Alert, AlertKind, UsageRecord
from llm.catalog import build_catalog, set_catalog
from tests.api.conftest import CATALOG, KEYS
from tests.api.loopback import FakeAnthropicStream, FakeGeminiStream, Reply, ServerThread
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def unlimited_plan(db):
    """Loops of requests here test the ledger, not the plan's rate limits."""
    from billing.models import Plan
    from billing.plan_cache import forget_cached_plans

    Plan.objects.update_or_create(
        slug="free",
        defaults={
            "name": "Free",
            "requests_per_minute": None,
            "requests_per_hour": None,
            "requests_per_day": None,
            "tokens_per_minute": None,
            "monthly_requests": None,
            "monthly_tokens": None,
        },
    )
    forget_cached_plans()
    yield
    forget_cached_plans()


@pytest.fixture
def shared_redis(settings, gateway_server):
    """The gateway settles through Redis, as in production: settling then really waits on the
    network, which is when a client closing the connection used to cancel it."""
    from llm.redis_clients import close_redis
    from tests.stores import use_redis

    use_redis(settings)
    yield
    gateway_server.call(close_redis())


@pytest.fixture
def sdk(gateway, key):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    yield client
    client.close()


def post(gateway, key, body, path="/v1/chat/completions", **headers):
    return httpx.post(
        f"{gateway}{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def rows(count: int, timeout: float = 10.0) -> list[UsageRecord]:
    return wait_for_usage(count, timeout=timeout)


def usage_chunks(model: str, text: str, usage: dict) -> list[str]:
    """An OpenAI stream of text deltas, then the usage chunk the upstream reports."""
    base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "model": model}
    chunks = [
        json.dumps({**base, "choices": [{"index": 0, "delta": {"content": word + " "}}]})
        for word in text.split()
    ]
    chunks.append(
        json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    chunks.append(json.dumps({**base, "choices": [], "usage": usage}))
    return chunks


# --- streams that end normally ----------------------------------------------------------------


def test_sync_sdk_streams_closed_right_after_done_each_leave_one_row(
    shared_redis, gateway, key, sdk
):
    streams = 100
    for _ in range(streams):
        stream = sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _chunk in stream:
            pass  # the SDK closes the connection as soon as it reads [DONE]
    records = rows(streams)
    assert len(records) == streams
    assert {r.request_id for r in records}.__len__() == streams
    for record in records:
        assert (record.status, record.input_tokens, record.output_tokens) == (200, 12, 6)
        assert (record.outcome, record.billing_reason) == ("served", "reported")
        assert str(record.cost) == "0.00000540"


def test_httpx_closing_at_done_leaves_one_row_per_stream(shared_redis, gateway, key):
    streams = 50
    with httpx.Client(timeout=30) as client:
        for _ in range(streams):
            with client.stream(
                "POST",
                f"{gateway}/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        break
    records = rows(streams)
    assert len(records) == streams
    assert all(r.billing_reason == "reported" and r.output_tokens == 6 for r in records)


async def test_async_sdk_concurrent_streams_each_leave_one_row(shared_redis, gateway, key):
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)

    async def one() -> None:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True
        )
        async for _chunk in stream:
            pass

    try:
        await asyncio.gather(*(one() for _ in range(20)))
    finally:
        await client.close()
    records = await asyncio.to_thread(rows, 20)
    assert len(records) == 20 and all(r.status == 200 for r in records)


# --- disconnects --------------------------------------------------------------------------------


async def test_disconnects_at_random_chunks_each_leave_one_billed_row(gateway, key, upstreams):
    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)
    picker = random.Random(20261201)
    hang_ups = [picker.randint(1, 15) for _ in range(10)]
    for _ in hang_ups:
        primary.then(Reply(chunks=chunks * 5, chunk_delay=0.01))
    async with httpx.AsyncClient(timeout=30) as client:
        for after in hang_ups:
            async with client.stream(
                "POST",
                f"{gateway}/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                received = 0
                async for line in response.aiter_lines():
                    received += line.startswith("data: ")
                    if received >= after:
                        break
    records = await asyncio.to_thread(rows, len(hang_ups))
    assert len(records) == len(hang_ups)
    for record in records:
        assert record.outcome == "client_gone" and record.billing_reason == "client_gone"
        assert record.client_disconnected and record.status == 499
        # The upstream had reported nothing: both numbers are estimates, and flagged.
        assert record.input_estimated and record.output_estimated
        assert 0 < record.output_tokens < 5 * 6 and record.cost > 0


async def test_a_stream_cut_by_a_graceful_stop_is_billed_like_a_disconnect(
    gateway, key, upstreams, monkeypatch
):
    from llm.api import settlement

    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)
    primary.then(Reply(chunks=chunks * 5, chunk_delay=0.01))
    monkeypatch.setattr(settlement, "_stopping", True)  # the drain at shutdown has begun
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break
    [record] = await asyncio.to_thread(rows, 1)
    assert (record.outcome, record.billing_reason) == ("stopping", "stopping")
    assert record.output_tokens > 0 and record.output_estimated


def reasoning_chunks(model: str, words: int) -> list[str]:
    base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "model": model}
    return [
        json.dumps({**base, "choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]})
        for _ in range(words)
    ]


async def test_reasoning_streamed_before_a_disconnect_is_billed(gateway, key, upstreams):
    primary, _ = upstreams
    primary.then(Reply(chunks=reasoning_chunks("gpt-4o-mini", 400), chunk_delay=0.005))
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        received = 0
        async for line in response.aiter_lines():
            received += line.startswith("data: ")
            if received >= 100:
                break
    [record] = await asyncio.to_thread(rows, 1)
    # At least the 100 reasoning deltas relayed ("think " is two tokens by our estimate).
    assert record.output_tokens >= 100 and record.output_estimated


def test_a_client_gone_before_the_answer_pays_what_the_provider_then_reports(
    gateway, key, upstreams
):
    primary, _ = upstreams
    primary.then(Reply(delay=0.8))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO},
            headers={"Authorization": f"Bearer {key}"},
            timeout=0.3,
        )
    [record] = rows(1)
    assert (record.outcome, record.billing_reason, record.status) == (
        "client_gone",
        "client_gone",
        499,
    )
    # The provider finished the answer nobody read: billed as it reported it.
    assert (record.input_tokens, record.output_tokens) == (12, 6)
    assert not record.tokens_estimated


ANTHROPIC_AND_GEMINI = textwrap.dedent(
    """\
      anthropic: {{name: Anthropic, dialect: anthropic, base_url: "{anthropic}"}}
      gemini: {{name: Gemini, dialect: gemini, base_url: "{gemini}"}}
    models:
      - id: claude-sonnet-4-5
        provider: anthropic
        upstream: claude-sonnet-4-5
        prices: [{{valid_from: 2025-09-29, input_per_mtok: "3.00", output_per_mtok: "15.00",
                   cached_input_per_mtok: "0.30", cache_write_5m_per_mtok: "3.75"}}]
        context_window: 200000
        max_output_tokens: 64000
        capabilities: [chat, stream]
        quality_rank: 1
        speed_rank: 1
      - id: gemini-2.5-pro
        provider: gemini
        upstream: gemini-2.5-pro
        prices: [{{valid_from: 2025-06-17, input_per_mtok: "1.25", output_per_mtok: "10.00",
                   cached_input_per_mtok: "0.125"}}]
        context_window: 1048576
        max_output_tokens: 65536
        capabilities: [chat, stream]
        quality_rank: 1
        speed_rank: 1
    """
)


@pytest.fixture(scope="module")
def dialect_servers():
    anthropic, gemini = FakeAnthropicStream(), FakeGeminiStream()
    servers = [ServerThread(anthropic).start(), ServerThread(gemini).start()]
    yield anthropic, gemini, servers[0].url, servers[1].url
    for server in servers:
        server.stop()


@pytest.fixture
def dialects(dialect_servers, upstream_servers, upstreams):
    anthropic, gemini, anthropic_url, gemini_url = dialect_servers
    (_, primary_url), (_, backup_url) = upstream_servers
    extra = ANTHROPIC_AND_GEMINI.format(anthropic=anthropic_url, gemini=gemini_url)
    text = CATALOG.format(primary=primary_url, backup=backup_url).replace(
        "models:\n", extra.split("models:\n")[0] + "models:\n" + extra.split("models:\n")[1], 1
    )
    keys = {**KEYS, "ANTHROPIC_API_KEY": "sk-ant-test", "GEMINI_API_KEY": "gm-test"}
    set_catalog(build_catalog(text, keys))
    return anthropic, gemini


# A prompt long enough for the cached counts the fakes report (4,000 cached of 5,000).
LONG_PROMPT = [{"role": "user", "content": "Summarise this. " + "context " * 3_000}]


async def hang_up_after(gateway, key, model, lines):
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/chat/completions",
            json={"model": model, "messages": LONG_PROMPT, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        received = 0
        async for line in response.aiter_lines():
            received += line.startswith("data: ")
            if received >= lines:
                break


async def test_a_disconnect_keeps_anthropics_message_start_input_counts(gateway, key, dialects):
    anthropic, _ = dialects
    await hang_up_after(gateway, key, "claude-sonnet-4-5", 10)
    [record] = await asyncio.to_thread(rows, 1)
    assert record.outcome == "client_gone", record.error_class
    # 900 plain + 4000 cache reads + 100 cache writes, exactly as message_start reported them.
    assert (record.input_tokens, record.cached_input_tokens) == (5_000, 4_000)
    assert record.cache_write_5m_tokens == 100
    assert not record.input_estimated and record.output_estimated
    # The cap we reserved was sent upstream (the client set none).
    assert anthropic.requests[-1]["max_tokens"] == 4096


async def test_a_disconnect_keeps_geminis_reported_counts(gateway, key, dialects):
    await hang_up_after(gateway, key, "gemini-2.5-pro", 10)
    [record] = await asyncio.to_thread(rows, 1)
    assert (record.input_tokens, record.cached_input_tokens) == (5_000, 4_000)
    assert not record.input_estimated
    assert record.output_tokens >= 9


# --- upstream cuts, deadlines, repairs -----------------------------------------------------------


def test_an_upstream_cut_bills_what_arrived_flagged(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    chunks = primary.stream_chunks("gpt-4o-mini", include_usage=False)[:3]
    primary.then(Reply(chunks=chunks, cut=True))
    stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError):
        for _chunk in stream:
            pass
    [record] = rows(1)
    assert (record.outcome, record.billing_reason, record.status) == (
        "upstream_cut",
        "upstream_cut",
        502,
    )
    assert record.output_tokens > 0 and record.output_estimated and record.cost > 0


def test_a_deadline_after_dispatch_bills_the_late_answer(gateway, key, upstreams, settings, sdk):
    primary, _ = upstreams
    settings.GATEWAY_REQUEST_DEADLINE_SECONDS = 0.3
    primary.then(Reply(delay=0.8))
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert raised.value.status_code == 504
    [record] = rows(1)
    assert (record.outcome, record.billing_reason, record.status) == (
        "deadline",
        "deadline_late_answer",
        504,
    )
    assert (record.input_tokens, record.output_tokens) == (12, 6)
    assert not record.tokens_estimated and str(record.cost) == "0.00000540"


def test_a_deadline_with_no_answer_bills_the_prompt_estimated(gateway, key, upstreams, settings):
    primary, _ = upstreams
    settings.GATEWAY_REQUEST_DEADLINE_SECONDS = 0.2
    settings.GATEWAY_LATE_ANSWER_GRACE_SECONDS = 0.2
    primary.then(Reply(delay=2.0))
    assert post(gateway, key, {"model": "gpt-4o-mini", "messages": HELLO}).status_code == 504
    [record] = rows(1)
    assert record.billing_reason == "deadline_estimated"
    assert record.input_tokens > 0 and record.input_estimated and record.output_tokens == 0
    assert record.cost > 0


def test_a_stream_whose_first_event_misses_the_deadline_bills_the_prompt(
    gateway, key, upstreams, settings
):
    primary, _ = upstreams
    settings.GATEWAY_REQUEST_DEADLINE_SECONDS = 0.2
    primary.then(Reply(delay=1.0))
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    assert post(gateway, key, body).status_code == 504
    [record] = rows(1)
    assert (record.outcome, record.billing_reason) == ("deadline", "deadline_estimated")
    assert record.input_estimated and record.input_tokens > 0 and record.cost > 0


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def test_a_failed_repair_still_bills_the_paid_first_attempt(gateway, key, upstreams):
    primary, backup = upstreams
    first = primary.completion("gpt-4o-mini-2024-07-18")
    first["choices"][0]["message"]["content"] = json.dumps({"city": "Oslo"})
    failure = Reply(status=500)
    primary.then(Reply(body=first), failure, failure)
    backup.then(failure, failure)
    response = post(
        gateway,
        key,
        {"prompt": "Biggest city in Norway?", "model": "gpt-4o-mini", "schema": SCHEMA},
        path="/api/v1/generate-structured",
    )
    assert response.status_code == 502
    [record] = rows(1)
    assert (record.outcome, record.billing_reason) == ("failed", "repair_failed")
    assert (record.input_tokens, record.output_tokens) == (12, 6)
    assert str(record.cost) == "0.00000540"


# --- bounds and reservations --------------------------------------------------------------------


def test_an_absurd_upstream_report_is_bounded_kept_and_alerted(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    absurd = primary.completion("gpt-4o-mini-2024-07-18")
    absurd["usage"] = {"prompt_tokens": 10**15, "completion_tokens": 10**15}
    primary.then(Reply(body=absurd))
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, max_tokens=100
    )
    [record] = rows(1)
    assert record.usage_anomaly
    assert record.output_tokens == 100 and record.input_tokens < 100
    assert record.reported_usage["input_tokens"] == 10**15
    # 100 output tokens at $0.60/M plus a few input tokens: cents at most, never $750M.
    assert record.cost < 1
    assert raw.headers["x-gateway-cost"] == str(record.cost)
    for _ in range(100):
        if Alert.objects.filter(kind=AlertKind.USAGE_ANOMALY).exists():
            break
        import time

        time.sleep(0.05)
    alert = Alert.objects.get(kind=AlertKind.USAGE_ANOMALY)
    assert alert.key == "usage_anomaly:openai" and record.request_id in alert.detail


def test_without_max_tokens_the_reserved_cap_is_sent_upstream(gateway, key, upstreams, sdk):
    primary, _ = upstreams
    sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    # gpt-4o-mini can write 16,384 tokens; the gateway reserves and sends 4,096.
    assert primary.requests[-1]["max_tokens"] == 4096
    sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_tokens=50)
    assert primary.requests[-1]["max_tokens"] == 50


def test_a_prompt_three_times_the_naive_estimate_fits_its_reservation(gateway, key, upstreams):
    from llm.api.call import Call
    from llm.api.parsing import parse_chat
    from llm.api.pipeline import worst_case
    from llm.catalog import get_catalog
    from llm.routing import resolve
    from llm.tokens import estimate_messages_tokens

    primary, _ = upstreams
    messages = [{"role": "user", "content": "3.14159,2.71828;" * 500}]
    naive = estimate_messages_tokens(messages)
    call = Call(endpoint="chat.completions", request_id="req_x")
    call.parsed = parse_chat({"model": "gpt-4o-mini", "messages": messages, "max_tokens": 10})
    call.plan = resolve(get_catalog(), "gpt-4o-mini", needs={"chat"})
    reserved_tokens, _ = worst_case(call)
    assert reserved_tokens >= 3 * naive + 10
    # The upstream says the prompt was three times our estimate: billed as reported, no anomaly.
    heavy = primary.completion("gpt-4o-mini-2024-07-18")
    heavy["usage"] = {"prompt_tokens": 3 * naive, "completion_tokens": 10}
    primary.then(Reply(body=heavy))
    post(gateway, key, {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 10})
    [record] = rows(1)
    assert record.input_tokens == 3 * naive and not record.usage_anomaly


async def test_concurrent_requests_without_max_tokens_stay_within_the_token_quota(
    gateway, key, upstreams, monkeypatch
):
    from asgiref.sync import sync_to_async

    from billing.models import Plan
    from billing.plan_cache import forget_cached_plans
    from llm.redis_clients import clear_embedded_redis

    primary, _ = upstreams
    # Left alone, the model would write 10,000 tokens: only the cap sent upstream bounds it.
    monkeypatch.setattr(primary, "completion_tokens", 10_000)
    await sync_to_async(Plan.objects.filter(slug="free").update)(monthly_tokens=50_000)
    forget_cached_plans()
    clear_embedded_redis()
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *[
                client.post(
                    f"{gateway}/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": HELLO},
                    headers={"Authorization": f"Bearer {key}"},
                )
                for _ in range(50)
            ]
        )
    served = [r for r in responses if r.status_code == 200]
    assert served and len(served) < 50
    assert all(request["max_tokens"] == 4096 for request in primary.requests)
    records = await asyncio.to_thread(rows, 50)
    billed = sum(r.input_tokens + r.output_tokens for r in records)
    assert billed <= 50_000
    clear_embedded_redis()


# --- caching opt-out, embeddings cache, prompt logging --------------------------------------------


DETERMINISTIC = {"model": "gpt-4o-mini", "messages": HELLO, "temperature": 0}


def test_no_store_neither_reads_nor_writes_the_cache(gateway, key, upstreams):
    primary, _ = upstreams
    first = post(gateway, key, DETERMINISTIC, **{"Cache-Control": "no-store"})
    second = post(gateway, key, DETERMINISTIC)
    assert first.headers["x-gateway-cache"] == "BYPASS"
    assert second.headers["x-gateway-cache"] == "MISS"  # nothing was stored
    assert len(primary.requests) == 2


def test_identical_embeddings_are_answered_from_the_cache(gateway, key, upstreams):
    primary, _ = upstreams
    body = {"model": "text-embedding-3-small", "input": ["one", "two"]}
    first = post(gateway, key, body, path="/v1/embeddings")
    second = post(gateway, key, body, path="/v1/embeddings")
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("MISS", "HIT")
    assert second.json()["data"] == first.json()["data"]
    assert len([r for r in primary.requests if r["path"].endswith("/embeddings")]) == 1
    miss, hit = rows(2)
    assert miss.cost > 0 and hit.cost == 0 and hit.billing_reason == "cache_hit"


def test_prompt_logging_keeps_the_redacted_prompt_on_the_row(gateway, key, upstreams, org):
    org.prompt_logging = True
    org.save(update_fields=["prompt_logging"])
    secret = "sk-live-abcdefghijklmnop1234"
    messages = [{"role": "user", "content": f"My key is api_key={secret}, say hello"}]
    post(gateway, key, {"model": "gpt-4o-mini", "messages": messages})
    post(
        gateway,
        key,
        {"model": "gpt-4o-mini", "messages": messages},
        **{"Cache-Control": "no-store"},
    )
    logged, opted_out = rows(2)
    assert logged.prompt_text.startswith("user: My key is")
    assert secret not in logged.prompt_text and "[redacted]" in logged.prompt_text
    assert opted_out.prompt_text is None
    # The dashboard's request list shows it, with how each call was billed.
    listed = httpx.get(
        f"{gateway}/api/dashboard/recent-requests",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()["results"]
    shown = {r["request_id"]: r for r in listed}
    assert shown[logged.request_id]["prompt_text"] == logged.prompt_text
    assert shown[logged.request_id]["billing_reason"] == "reported"


def test_without_prompt_logging_no_prompt_is_kept(gateway, key, upstreams):
    post(gateway, key, {"model": "gpt-4o-mini", "messages": HELLO})
    [record] = rows(1)
    assert record.prompt_text is None
