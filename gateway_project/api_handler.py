"""The public API's ASGI application: a raw ASGI route straight to the API's views.

Django's request machinery (building an ASGIRequest and its META, resolving the URL through the
whole site's URLconf several times, the exception wrapper, the signals, a thread hop to log each
4xx) cost about 30% of the event loop per API request. The API needs little of it: its paths are a
short fixed list, its views are async and read a handful of request attributes, and it answers
every error itself as JSON. So here:

- the routes are the public API's entries of llm/api/urls.py (the one list; Django's URLconf keeps
  them for reverse() and the test client), read once into a dict of exact paths plus the few
  patterns with converters; anything else under /v1/ or /api/v1/ is the JSON 404 of unknown_path,
  and a wrong method is the views' own 405 (allow_methods), as before;
- `ApiRequest` carries what the views, auth and parsing read: method, path, headers (looked up
  case-insensitively, as Django's), GET (a QueryDict), body; and the request ids bind_request_id
  sets;
- the views' HttpResponse or StreamingHttpResponse is sent as Django sends it (headers, cookies,
  body or the streamed parts), with the request's `X-Request-ID`.

What Django's handler did that still matters is kept: a client that hangs up cancels its request
(and a stream is settled for what it received); a body is read only up to the API's limit (the view
then refuses it with its 413); 4xx and 5xx answers are logged on `django.request`; an error no view
caught is a JSON 500. The request_started/finished signals are not sent: their receivers are
Django's (tests/api/test_api_handler.py pins the list), and they only reset the query log, close
the event loop thread's database connections (the API has none there: its ORM work runs in worker
threads) and close caches (a no-op for the caches we use).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from functools import cache, cached_property

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.urls import URLPattern
from django.utils.datastructures import CaseInsensitiveMapping
from django.utils.log import log_response

from analytics.logs import request_id_var
from analytics.request_ids import HEADER, bind_request_id
from llm.api.errors import ApiError
from llm.api.headers import header_list, set_headers
from llm.api.unknown_routes import shape_for

API_PREFIXES = ("/v1/", "/api/v1/")


class Headers(CaseInsensitiveMapping):
    """Django's case-insensitive headers, made from names already in lower case; `get` of an
    absent header without raising KeyError (Mapping.get's way), since most requests lack most of
    the headers the API asks about."""

    def __init__(self, lowered: dict[str, str]) -> None:
        self._store = {name: (name, value) for name, value in lowered.items()}

    def get(self, key: str, default=None):
        item = self._store.get(key.lower())
        return default if item is None else item[1]


class ApiRequest:
    """The request as the API's views see it (a small stand-in for Django's HttpRequest)."""

    def __init__(self, scope, body: bytes) -> None:
        self.method: str = scope["method"].upper()
        self.path: str = scope["path"]
        self.body = body
        self._scope = scope
        self.request_id = self.client_request_id = ""  # set by bind_request_id

    @cached_property
    def headers(self) -> Headers:
        """Like Django's: latin-1 names and values, "_" read as "-", repeats joined by ","."""
        joined: dict[str, str] = {}
        for raw_name, raw_value in self._scope["headers"]:
            key = raw_name.decode("latin1").replace("_", "-").lower()
            value = raw_value.decode("latin1")
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        return Headers(joined)

    @cached_property
    def GET(self) -> QueryDict:  # noqa: N802 (Django's name, read by llm.api.auth)
        query = self._scope.get("query_string", b"")
        # Nearly every API request has none; parsing "" still cost a few percent of a request.
        return QueryDict(query.decode()) if query else no_query()

    def __repr__(self) -> str:  # shows in the log lines of 4xx and 5xx answers
        return f"<{type(self).__name__}: {self.method} {self.path!r}>"


@cache
def no_query() -> QueryDict:
    """The empty query every request without a query string shares (immutable, as all of
    Django's request QueryDicts)."""
    return QueryDict()


class Routes:
    """Path -> view for the public API, read from its urlpatterns."""

    def __init__(self, urlpatterns, fallback) -> None:
        self.exact: dict[str, object] = {}
        self.patterns: list[URLPattern] = []
        self.fallback = fallback
        for pattern in urlpatterns:
            path = "/" + str(pattern.pattern)
            if not path.startswith(API_PREFIXES):
                continue  # the dashboard's pages: served by the site
            if pattern.pattern.converters:
                self.patterns.append(pattern)
            else:
                self.exact[path] = pattern.callback

    def resolve(self, path: str) -> tuple[object, dict]:
        """The view and its keyword arguments for a path; unknown paths get the fallback."""
        view = self.exact.get(path)
        if view is not None:
            return view, {}
        for pattern in self.patterns:
            match = pattern.resolve(path[1:])
            if match:
                return match.func, match.kwargs
        return self.fallback, {}


def api_routes() -> Routes:
    # Imported when the handler is made: the views import models, so only after django.setup().
    from llm.api.unknown_routes import unknown_path
    from llm.api.urls import urlpatterns

    return Routes(urlpatterns, unknown_path)


class ApiASGIHandler:
    """The ASGI application of /v1/ and /api/v1/ (gateway_project/asgi.py dispatches to it)."""

    def __init__(self, routes: Routes | None = None) -> None:
        self.routes = routes or api_routes()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"The API serves HTTP, not {scope['type']}.")
        body = await read_body(receive, settings.GATEWAY_MAX_BODY_BYTES)
        if body is None:
            return  # the client hung up before it finished sending
        request = ApiRequest(scope, body)
        token = bind_request_id(request)
        try:
            await self._serve_until_done_or_disconnected(request, receive, send)
        finally:
            request_id_var.reset(token)

    async def _serve_until_done_or_disconnected(self, request, receive, send) -> None:
        """Answer, unless the client hangs up first: then the answer (or stream) is cancelled,
        which is how the views learn to settle a request whose client is gone.

        The answer runs in this (the server's) task, with one listener task beside it, not in a
        task of its own: an open stream holds whatever tasks it has (with their coroutines and
        contexts) for its whole length."""
        answering = asyncio.current_task()
        state = {"gone": False, "finished": False}

        def on_hang_up(listener: asyncio.Task) -> None:
            if listener.cancelled() or state["finished"]:
                return  # ended by us, or after the answer was done: nothing to stop
            if listener.exception() is None:
                state["gone"] = True
                answering.cancel()

        hang_up = asyncio.create_task(wait_for_disconnect(receive))
        hang_up.add_done_callback(on_hang_up)
        try:
            await self._answer(request, send)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise  # cancelled from outside (the server stopping): not ours to swallow
            answering.uncancel()
        finally:
            state["finished"] = True
            hang_up.cancel()

    async def _answer(self, request: ApiRequest, send) -> None:
        view, kwargs = self.routes.resolve(request.path)
        error = None
        try:
            response = await view(request, **kwargs)
        except Exception as exc:  # the views answer their own errors: this is a bug
            response, error = internal_error(request), exc
        set_headers(response, {HEADER: request.request_id})
        if response.status_code >= 400:  # as Django logs them ("Not Found: /v1/nothing")
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
                exception=error,
            )
        await send_response(response, send)


async def read_body(receive, limit: int) -> bytes | None:
    """The request's body, or None if the client hung up. Reading stops past `limit` bytes: the
    view refuses such a body with its 413 anyway, and the rest is never held in memory."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body  # the usual case: the whole body in one message
    parts, size = [body], len(body)
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def wait_for_disconnect(receive) -> None:
    """Returns when the client hangs up. The unread rest of a refused body is dropped."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_response(response: HttpResponse, send) -> None:
    """Django's ASGIHandler.send_response, minus the splitting of bodies into 64 KiB messages."""
    await send(response_start(response))
    if not response.streaming:
        await send({"type": "http.response.body", "body": response.content})
        return
    async with aclosing(aiter(response)) as parts:
        async for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body"})


def response_start(response: HttpResponse) -> dict:
    """The http.response.start message; built here, so a stream's frame does not keep its header
    list for the stream's whole length. A whole answer says its length, as Django's
    CommonMiddleware would: the server then sends it as it is, not in chunked encoding."""
    headers = header_list(response)
    if not response.streaming and "Content-Length" not in response:
        headers.append((b"content-length", b"%d" % len(response.content)))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.OutputString().encode("ascii").strip()))
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


def internal_error(request: ApiRequest) -> HttpResponse:
    """A JSON 500 in the surface's shape, where Django would render its HTML error page."""
    error = ApiError(500, "Internal error.", code="internal")
    return error.response(shape=shape_for(request.path))
