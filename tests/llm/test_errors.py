"""Upstream failures come back classified, so routing knows what to retry elsewhere."""

from __future__ import annotations

import email.utils
import socket
import time
from dataclasses import replace

import httpx
import pytest

from llm.http import build_client
from llm.providers import get_dialect
from llm.providers.errors import parse_retry_after
from llm.types import ErrorKind, ProviderError
from tests.llm.cases import BY_ID, CASES
from tests.llm.fakes import Case, FakeUpstream, fixture_json, json_reply, question

STATUS_CASES = [
    # (status, dialect fixture, expected kind, retryable)
    (400, "openai/error_400.json", ErrorKind.BAD_REQUEST, False),
    (401, "openai/error_401.json", ErrorKind.AUTH, False),
    (403, "openai/error_401.json", ErrorKind.AUTH, False),
    (404, "openai/error_404.json", ErrorKind.NOT_FOUND, False),
    (422, "openai/mistral_error_422.json", ErrorKind.BAD_REQUEST, False),
    (429, "openai/error_429.json", ErrorKind.RATE_LIMITED, True),
    (500, "openai/error_500.json", ErrorKind.OVERLOADED, True),
    (502, None, ErrorKind.OVERLOADED, True),
    (503, "gemini/error_503.json", ErrorKind.OVERLOADED, True),
    (529, "anthropic/error_overloaded.json", ErrorKind.OVERLOADED, True),
]


def failing_upstream(
    case: Case, status: int, body: object, headers: dict[str, str] | None = None
) -> FakeUpstream:
    fake = FakeUpstream(case.provider.dialect)
    for url in {case.chat_url, case.stream_url}:
        fake.route("POST", httpx.URL(url).path, json_reply(body, status, headers))
    return fake


@pytest.mark.parametrize(("status", "fixture", "kind", "retryable"), STATUS_CASES)
@pytest.mark.parametrize("case_id", ["openai", "anthropic", "gemini", "cohere", "ollama"])
async def test_each_status_class_is_classified_the_same_in_every_dialect(
    case_id: str, status: int, fixture: str | None, kind: ErrorKind, retryable: bool
) -> None:
    case = BY_ID[case_id]
    body = fixture_json(fixture) if fixture else "<html>Bad Gateway</html>"
    fake = failing_upstream(case, status, body)
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect(case.provider.dialect).chat(
                client, case.provider, question(case.model)
            )

    error = caught.value
    assert (error.kind, error.retryable, error.status) == (kind, retryable, status)
    assert error.provider == case.id
    assert error.message.startswith(case.provider.name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_a_status_error_is_raised_from_a_stream_before_any_event(case: Case) -> None:
    fake = failing_upstream(case, 429, fixture_json("openai/error_429.json"), {"retry-after": "7"})
    async with fake.client() as client:
        stream = get_dialect(case.provider.dialect).stream(
            client, case.provider, question(case.model)
        )
        with pytest.raises(ProviderError) as caught:
            await anext(stream)

    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == 7.0


async def test_the_upstream_message_is_carried_in_the_error() -> None:
    case = BY_ID["anthropic"]
    fake = failing_upstream(case, 400, fixture_json("anthropic/error_400.json"))
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("anthropic").chat(client, case.provider, question(case.model))

    assert "roles must alternate" in caught.value.message
    assert "HTTP 400" in caught.value.message


async def test_anthropic_overloaded_error_type_is_retryable_whatever_the_status() -> None:
    case = BY_ID["anthropic"]
    fake = failing_upstream(case, 400, fixture_json("anthropic/error_overloaded.json"))
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("anthropic").chat(client, case.provider, question(case.model))

    assert caught.value.kind == ErrorKind.OVERLOADED
    assert caught.value.retryable


async def test_gemini_rejecting_the_key_with_400_counts_as_an_auth_error() -> None:
    case = BY_ID["gemini"]
    fake = failing_upstream(case, 400, fixture_json("gemini/error_invalid_key.json"))
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("gemini").chat(client, case.provider, question(case.model))

    assert caught.value.kind == ErrorKind.AUTH
    assert "API key not valid" in caught.value.message


async def test_gemini_quota_errors_take_retry_after_from_the_retry_info_detail() -> None:
    case = BY_ID["gemini"]
    fake = failing_upstream(case, 429, fixture_json("gemini/error_429.json"))
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("gemini").chat(client, case.provider, question(case.model))

    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == 37.0


async def test_an_ollama_unknown_model_is_not_found_with_ollamas_message() -> None:
    case = BY_ID["ollama"]
    fake = failing_upstream(case, 404, fixture_json("ollama/error_404.json"))
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("ollama").chat(client, case.provider, question("llama9"))

    assert caught.value.kind == ErrorKind.NOT_FOUND
    assert 'model "llama9" not found' in caught.value.message


async def test_a_key_echoed_back_by_the_upstream_is_redacted_from_the_message() -> None:
    case = BY_ID["openai"]
    body = {"error": {"message": f"Incorrect API key provided: {case.provider.api_key}."}}
    fake = failing_upstream(case, 401, body)
    async with fake.client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect("openai").chat(client, case.provider, question(case.model))

    assert case.provider.api_key not in caught.value.message
    assert "[redacted]" in caught.value.message


def test_retry_after_reads_seconds() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "12"})) == 12.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})
    assert parse_retry_after(headers) == 1.5


def test_retry_after_reads_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after(httpx.Headers({"Retry-After": when}))
    assert seconds is not None and 25 <= seconds <= 31


def test_retry_after_is_none_when_absent_or_garbled() -> None:
    assert parse_retry_after(httpx.Headers({})) is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None


@pytest.mark.parametrize("case_id", ["openai", "anthropic", "gemini", "cohere", "ollama"])
async def test_a_timeout_is_a_retryable_timeout_error(case_id: str) -> None:
    case = BY_ID[case_id]

    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with build_client(transport=httpx.MockTransport(time_out)) as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect(case.provider.dialect).chat(
                client, case.provider, question(case.model)
            )

    assert caught.value.kind == ErrorKind.TIMEOUT
    assert caught.value.retryable


def unused_local_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has nobody listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("case_id", ["openai", "anthropic", "gemini", "cohere", "ollama"])
async def test_a_refused_connection_is_a_retryable_connection_error(case_id: str) -> None:
    case = BY_ID[case_id]
    provider = replace(case.provider, base_url=f"http://127.0.0.1:{unused_local_port()}")
    async with build_client() as client:
        with pytest.raises(ProviderError) as caught:
            await get_dialect(provider.dialect).chat(client, provider, question(case.model))
        stream = get_dialect(provider.dialect).stream(client, provider, question(case.model))
        with pytest.raises(ProviderError) as caught_stream:
            await anext(stream)

    for error in (caught.value, caught_stream.value):
        assert error.kind == ErrorKind.CONNECTION
        assert error.retryable
        assert case.provider.name in error.message
