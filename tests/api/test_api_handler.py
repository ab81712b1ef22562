"""The public API's raw ASGI route: its routing table, its request, how it answers and hangs up.

The tests drive the ASGI application in-process with scripted messages (no server), with the API's
real routes or with small test views. test_unknown_routes.py covers the same answers over HTTP.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from django.core import signals
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from gateway_project.api_handler import ApiASGIHandler, Routes, api_routes
from llm.api import agent_views, catalog_views, views
from llm.api.unknown_routes import unknown_path
from llm.api.urls import urlpatterns


def scope(method: str, url: str, headers: list[tuple[bytes, bytes]] = ()) -> dict:
    route, _, query = url.partition("?")
    return {
        "type": "http",
        "method": method,
        "path": route,
        "query_string": query.encode(),
        "headers": list(headers),
    }


class Exchange:
    """One request's ASGI messages: what the client sends (then, optionally, a hang-up)."""

    def __init__(self, *bodies: bytes, hang_up_after: float | None = None) -> None:
        self.incoming = [
            {"type": "http.request", "body": body, "more_body": i < len(bodies) - 1}
            for i, body in enumerate(bodies or (b"",))
        ]
        self.hang_up_after = hang_up_after
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.incoming:
            return self.incoming.pop(0)
        if self.hang_up_after is None:
            await asyncio.Event().wait()  # the client stays until the answer is sent
        await asyncio.sleep(self.hang_up_after)
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {name.decode().lower(): value.decode() for name, value in self.sent[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent[1:])


async def call(handler, method, url, *bodies, headers=(), hang_up_after=None) -> Exchange:
    exchange = Exchange(*bodies, hang_up_after=hang_up_after)
    await handler(scope(method, url, headers), exchange.receive, exchange.send)
    return exchange


def serving(view, route: str = "v1/test") -> ApiASGIHandler:
    return ApiASGIHandler(Routes([path(route, view)], unknown_path))


# --- the routing table ----------------------------------------------------------------------


def test_every_public_api_url_is_routed_to_its_view():
    routes = api_routes()
    for pattern in urlpatterns:
        route = "/" + str(pattern.pattern)
        if not route.startswith(("/v1/", "/api/v1/")):
            assert route not in routes.exact  # the dashboard's pages stay with the site
        elif not pattern.pattern.converters:
            assert routes.resolve(route) == (pattern.callback, {})
    assert routes.resolve("/v1/chat/completions")[0] is views.chat_completions
    assert routes.resolve("/v1/messages/count_tokens")[0] is agent_views.count_tokens
    assert routes.resolve("/api/v1/health")[0] is catalog_views.gateway_health


@pytest.mark.parametrize(
    ("url", "model_id"),
    [("/v1/models/gpt-4o-mini", "gpt-4o-mini"), ("/v1/models/org/model:v2", "org/model:v2")],
)
def test_a_model_id_may_hold_slashes(url, model_id):
    assert api_routes().resolve(url) == (views.retrieve_model, {"model_id": model_id})


@pytest.mark.parametrize(
    "url",
    ["/v1/nothing", "/v1/models/", "/v1/chat/completions/", "/api/v1/", "/v1/CHAT/completions"],
)
def test_anything_else_is_the_unknown_path(url):
    assert api_routes().resolve(url) == (unknown_path, {})


# --- answers of the real views without a database -------------------------------------------


async def test_an_unknown_path_is_a_json_404_with_a_request_id():
    answer = await call(ApiASGIHandler(), "GET", "/v1/nothing?x=1")
    assert answer.status == 404 and answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"].startswith("req_")
    error = json.loads(answer.body)["error"]
    assert error["code"] == "unknown_url" and "GET /v1/nothing." in error["message"]


async def test_an_anthropic_path_answers_in_anthropics_shape():
    answer = await call(ApiASGIHandler(), "POST", "/v1/messages/batches")
    assert answer.status == 404
    assert json.loads(answer.body)["type"] == "error"


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("HEAD", "/v1/models", "GET"),  # GET-only views refuse HEAD and OPTIONS too, as before
        ("OPTIONS", "/api/v1/health", "GET"),
        ("DELETE", "/v1/models/org/model", "GET"),
    ],
)
async def test_a_wrong_method_is_the_views_405(method, url, allowed):
    answer = await call(ApiASGIHandler(), method, url)
    assert (answer.status, answer.headers["allow"]) == (405, allowed)
    assert json.loads(answer.body)["error"]["code"] == "method_not_allowed"


async def test_a_key_in_the_query_string_is_refused():
    answer = await call(ApiASGIHandler(), "POST", "/v1/chat/completions?api_key=anything", b"{}")
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["code"] == "api_key_in_query"


async def test_the_clients_request_id_is_echoed():
    headers = [(b"x-request-id", b"client-id-1234")]
    answer = await call(ApiASGIHandler(), "GET", "/v1/nothing", headers=headers)
    assert answer.headers["x-request-id"] == "client-id-1234"


# --- the request the views see --------------------------------------------------------------


async def test_the_request_carries_method_path_query_headers_and_body():
    seen = {}

    async def view(request):
        seen.update(
            method=request.method,
            path=request.path,
            a=request.GET.getlist("a"),
            b=request.GET.get("b"),
            type=request.headers.get("content-type"),
            key=request.headers.get("X-Api-Key"),
            accept=request.headers["Accept"],
            missing=request.headers.get("Authorization", ""),
            body=request.body,
            request_id=request.request_id,
        )
        return HttpResponse("ok")

    headers = [
        (b"content-type", b"application/json"),
        (b"x_api_key", b"k"),  # Django reads "_" as "-"
        (b"accept", b"text/plain"),
        (b"accept", b"application/json"),  # repeats are joined, as Django joins them
    ]
    await call(serving(view), "post", "/v1/test?a=1&a=2&b=x%20y", b'{"a":', b"1}", headers=headers)
    assert seen.pop("request_id").startswith("req_")
    assert seen == {
        "method": "POST",
        "path": "/v1/test",
        "a": ["1", "2"],
        "b": "x y",
        "type": "application/json",
        "key": "k",
        "accept": "text/plain,application/json",
        "missing": "",
        "body": b'{"a":1}',
    }


async def test_a_request_without_a_query_string_has_an_empty_query_no_view_can_change():
    queries = []

    async def view(request):
        queries.append(request.GET)
        with pytest.raises(AttributeError):  # immutable, as Django's request.GET
            request.GET["key"] = "gw-x"
        return HttpResponse("ok")

    for _ in range(2):
        await call(serving(view), "GET", "/v1/test")
    assert [dict(query) for query in queries] == [{}, {}]


async def test_a_body_past_the_limit_is_not_held_to_its_end(settings):
    settings.GATEWAY_MAX_BODY_BYTES = 2500
    sizes = []

    async def view(request):
        sizes.append(len(request.body))
        return JsonResponse({}, status=413)

    answer = await call(serving(view), "POST", "/v1/test", *[b"x" * 1000] * 100)
    assert answer.status == 413
    assert sizes == [3000]  # enough to know it is too big; the rest is dropped, never held


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_past_the_limit_is_413(gateway, key, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 1000
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        content=(b"x" * 500 for _ in range(10)),  # no Content-Length: sent chunked
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]["message"]


# --- the response ---------------------------------------------------------------------------


async def test_headers_and_cookies_are_sent():
    async def view(request):
        response = HttpResponse(b"body", status=201, headers={"X-One": "1"})
        response.set_cookie("c", "v")
        return response

    answer = await call(serving(view), "GET", "/v1/test")
    assert (answer.status, answer.body) == (201, b"body")
    assert answer.headers["x-one"] == "1" and answer.headers["set-cookie"].startswith("c=v;")
    assert [m.get("more_body", False) for m in answer.sent[1:]] == [False]


@pytest.mark.parametrize("body", [b"", b"{}", "é".encode() * 1000])
async def test_a_whole_answer_says_its_length_so_it_is_not_sent_chunked(body):
    async def view(request):
        return HttpResponse(body, content_type="application/json")

    answer = await call(serving(view), "GET", "/v1/test")
    assert answer.body == body
    assert answer.headers["content-length"] == str(len(body))
    assert [name.lower() for name, _ in answer.sent[0]["headers"]].count(b"content-length") == 1


async def test_a_stream_is_sent_part_by_part():
    async def parts():
        yield "data: 1\n\n"
        yield b"data: 2\n\n"

    async def view(request):
        return StreamingHttpResponse(parts(), content_type="text/event-stream")

    answer = await call(serving(view), "POST", "/v1/test")
    assert answer.headers["x-request-id"].startswith("req_")
    assert [m.get("body") for m in answer.sent[1:]] == [b"data: 1\n\n", b"data: 2\n\n", None]
    assert answer.sent[-1].get("more_body", False) is False
    assert "content-length" not in answer.headers


async def test_an_error_no_view_caught_is_a_json_500_and_logged(caplog):
    async def view(request):
        raise RuntimeError("a bug")

    answer = await call(serving(view), "POST", "/v1/test")
    assert answer.status == 500
    assert json.loads(answer.body)["error"]["code"] == "internal"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Internal Server Error: /v1/test" and record.exc_info


async def test_a_4xx_answer_is_logged_as_django_logs_it(caplog):
    await call(ApiASGIHandler(), "GET", "/v1/nothing")
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert (record.levelname, record.getMessage()) == ("WARNING", "Not Found: /v1/nothing")


# --- hanging up -----------------------------------------------------------------------------


async def test_a_client_that_hangs_up_cancels_the_view():
    events = []

    async def view(request):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return HttpResponse()

    answer = await asyncio.wait_for(call(serving(view), "POST", "/v1/test", hang_up_after=0.05), 5)
    assert events == ["cancelled"] and answer.sent == []


async def test_a_client_that_hangs_up_mid_stream_ends_the_stream():
    events = []

    async def parts():
        try:
            yield "data: first\n\n"
            await asyncio.sleep(10)
            yield "data: never\n\n"
        finally:
            events.append("stream ended")

    async def view(request):
        return StreamingHttpResponse(parts(), content_type="text/event-stream")

    answer = await asyncio.wait_for(call(serving(view), "POST", "/v1/test", hang_up_after=0.05), 5)
    await asyncio.sleep(0)  # the stream's generator is closed as its task unwinds
    assert events == ["stream ended"]
    assert answer.body == b"data: first\n\n"


async def test_a_client_that_hangs_up_while_sending_is_not_served():
    async def view(request):
        raise AssertionError("not called")

    exchange = Exchange(b"{", b"}")
    exchange.incoming[1] = {"type": "http.disconnect"}
    await serving(view)(scope("POST", "/v1/test"), exchange.receive, exchange.send)
    assert exchange.sent == []


# --- what the route leaves out --------------------------------------------------------------


def test_the_request_signals_have_only_djangos_receivers():
    """The route sends neither request_started nor request_finished: their receivers (Django's)
    have nothing to do for the API. A new receiver would be skipped on the API: decide there."""

    def names(signal) -> set[str]:
        return {receiver().__qualname__ for _, receiver, *_ in signal.receivers if receiver()}

    assert names(signals.request_started) <= {"reset_queries", "close_old_connections"}
    assert names(signals.request_finished) <= {
        "close_old_connections",
        "close_caches",
        "reset_urlconf",
    }
