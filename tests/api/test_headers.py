"""llm/api/headers.py: headers set in bulk end exactly as Django's `response[name] = value` leaves
them, and the list sent to the server is what Django holds. These tests also pin the Django
storage the module relies on (`ResponseHeaders._store`)."""

from __future__ import annotations

import pytest
from django.http import BadHeaderError, HttpResponse, StreamingHttpResponse

from llm.api.headers import header_list, set_headers

GATEWAY_HEADERS = {
    "X-Request-ID": "req_0123456789abcdef",
    "X-Gateway-Cache": "MISS",
    "X-Gateway-Candidates": "gpt-4o-mini, claude-haiku",
    "x-ratelimit-remaining-requests": "59",
    "X-Gateway-Cost": "0.00000720",
}


def by_django(headers: dict) -> HttpResponse:
    response = HttpResponse(b"{}", content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response


def in_bulk(headers: dict) -> HttpResponse:
    response = HttpResponse(b"{}", content_type="application/json")
    set_headers(response, headers)
    return response


@pytest.mark.parametrize(
    "headers",
    [
        GATEWAY_HEADERS,
        {"X-Gateway-Route-Reason": "café"},  # latin-1, not ASCII: Django's way
        {"X-Gateway-Model": "模型"},  # neither: Django MIME-encodes it
        {"Retry-After": 7},  # not a string: Django turns it into one
        {"content-type": "text/plain"},  # replaces the one set before, whatever its case
    ],
)
def test_the_same_headers_as_django_would_keep(headers):
    bulk, django = in_bulk(headers), by_django(headers)
    assert list(bulk.items()) == list(django.items())
    assert header_list(bulk) == header_list(django)
    for name, value in django.items():
        assert bulk[name.lower()] == value


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-ID": "abc\r\nSet-Cookie: stolen=1"},
        {"X-Gateway-Model": "model\n"},
        {"X-Evil\r\nSet-Cookie": "1"},
        {"X-Gateway-Model": "modèle\r\n"},
    ],
)
def test_line_breaks_are_refused_as_django_refuses_them(headers):
    with pytest.raises(BadHeaderError):
        in_bulk(headers)
    with pytest.raises(BadHeaderError):
        by_django(headers)


def test_the_list_sent_is_what_the_response_holds():
    response = StreamingHttpResponse(iter([b"data: 1\n\n"]), content_type="text/event-stream")
    set_headers(response, GATEWAY_HEADERS)
    response["X-Set-Later"] = "yes"
    del response["X-Gateway-Cache"]
    sent = header_list(response)
    assert sent == [(n.encode("ascii"), v.encode("latin1")) for n, v in response.items()]
    assert (b"X-Set-Later", b"yes") in sent
    assert not any(name.lower() == b"x-gateway-cache" for name, _ in sent)
    assert sent[0] == (b"Content-Type", b"text/event-stream")
