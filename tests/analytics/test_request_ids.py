"""Every HTTP request has a request id, in its log lines and its response."""

from __future__ import annotations

import logging

import pytest

from analytics import logs


def test_a_response_carries_a_new_request_id(client):
    response = client.get("/healthz")
    assert response["X-Request-ID"].startswith("req_")
    assert response["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_a_sane_client_request_id_is_kept(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="trace-1234abcd")
    assert response["X-Request-ID"] == "trace-1234abcd"


@pytest.mark.parametrize("bad", ["short", "has spaces in it!!", "x" * 65, "new\nline-injection"])
def test_an_odd_client_request_id_is_replaced(client, bad):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"].startswith("req_")


@pytest.mark.django_db
def test_log_lines_written_during_a_request_carry_its_id(client, caplog, monkeypatch):
    def noisy_check():
        logging.getLogger("analytics.probes").warning("checking")
        return "ok"

    from analytics import probes

    monkeypatch.setitem(probes.CHECKS, "database", noisy_check)
    with caplog.at_level(logging.WARNING, logger="analytics.probes"):
        response = client.get("/readyz", HTTP_X_REQUEST_ID="trace-abcdef12")

    [record] = [r for r in caplog.records if r.getMessage() == "checking"]
    assert record.request_id == "trace-abcdef12"
    assert response["X-Request-ID"] == "trace-abcdef12"
    assert logs.request_id_var.get() is None  # not leaked past the request


async def test_async_requests_get_a_request_id_too(async_client):
    response = await async_client.get("/healthz", headers={"X-Request-ID": "async-trace-0001"})
    assert response["X-Request-ID"] == "async-trace-0001"
