"""Every log line of a public API request carries the id the response shows in X-Request-ID."""

from __future__ import annotations

import logging

import httpx
import pytest

from analytics.logs import RequestIdFilter
from llm.api import governance, pipeline
from tests.api.usage import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


class Lines(logging.Handler):
    """(logger, message, request id) of each line, the id stamped as the console handler does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(RequestIdFilter())
        self.seen: list[tuple[str, str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.getMessage(), record.request_id))


@pytest.fixture
def lines(monkeypatch):
    """A line from the view (admission) and one from the settlement (the usage record), beside
    the request line the settlement writes."""
    log = logging.getLogger("tests.request_ids")
    admit, settle = pipeline.admit, governance.settle_and_record

    async def logged_admit(call, *args, **kwargs):
        log.info("admitting")
        return await admit(call, *args, **kwargs)

    async def logged_settle(*args, **kwargs):
        log.info("recording usage")
        return await settle(*args, **kwargs)

    monkeypatch.setattr(pipeline, "admit", logged_admit)
    monkeypatch.setattr(governance, "settle_and_record", logged_settle)
    handler = Lines()
    logging.getLogger().addHandler(handler)
    yield handler.seen
    logging.getLogger().removeHandler(handler)


def call(gateway, key, stream: bool, **headers) -> str:
    """The X-Request-ID of a chat completion, once its usage record is written."""
    body = {**BODY, "stream": stream}
    headers["Authorization"] = f"Bearer {key}"
    url = f"{gateway}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        response.read()
        assert response.status_code == 200
    wait_for_usage(1)
    return response.headers["X-Request-ID"]


def ids_of_the_request(seen) -> list[str | None]:
    ours = {"admitting", "recording usage"}
    found = [i for name, message, i in seen if name == "gateway.requests" or message in ours]
    assert len(found) == 3, seen
    return found


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_client_id_is_on_every_line(gateway, key, upstreams, lines, stream):
    shown = call(gateway, key, stream, **{"X-Request-ID": "trace-abcdef12"})

    assert shown == "trace-abcdef12"
    assert ids_of_the_request(lines) == [shown] * 3
    [row] = wait_for_usage(1)
    assert row.client_request_id == shown and row.request_id != shown  # ours stays unique


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_generated_id_is_on_every_line_and_keys_the_usage_record(
    gateway, key, upstreams, lines, stream
):
    shown = call(gateway, key, stream)

    assert shown.startswith("req_")
    assert ids_of_the_request(lines) == [shown] * 3
    [row] = wait_for_usage(1)
    assert (row.request_id, row.client_request_id) == (shown, "")


@pytest.mark.parametrize("bad", ["short", "has spaces!", "x" * 65])
def test_an_unacceptable_client_id_is_replaced(gateway, key, upstreams, lines, bad):
    shown = call(gateway, key, False, **{"X-Request-ID": bad})

    assert shown.startswith("req_") and shown != bad
    assert ids_of_the_request(lines) == [shown] * 3
    [row] = wait_for_usage(1)
    assert row.client_request_id == ""
