"""The public API's handler builds its own middleware chain from an explicit list.

It replaces BaseHandler.load_middleware and reuses ASGIHandler's request plumbing, so it relies
on Django internals that are not public API. These tests pin them: after a Django upgrade that
renames or reshapes one, they fail here, by name, rather than somewhere in the request path.
"""

from __future__ import annotations

import inspect

import pytest
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers import exception
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler

from gateway_project.api_handler import ApiASGIHandler


def parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def test_django_calls_load_middleware_as_the_handler_overrides_it():
    assert parameters(BaseHandler.load_middleware) == [("self", inspect.Parameter.empty)] + [
        ("is_async", False)
    ]
    assert "self.load_middleware(is_async=True)" in inspect.getsource(ASGIHandler.__init__)


def test_django_reads_the_chain_and_hook_lists_the_handler_sets():
    for name in (
        "_middleware_chain",
        "_view_middleware",
        "_template_response_middleware",
        "_exception_middleware",
    ):
        assert hasattr(BaseHandler, name), name
    assert "await self._middleware_chain(request)" in inspect.getsource(
        BaseHandler.get_response_async
    )
    inner = inspect.getsource(BaseHandler._get_response_async)
    assert "self._view_middleware" in inner and "self._template_response_middleware" in inner
    assert "self._exception_middleware" in inspect.getsource(
        BaseHandler.process_exception_by_middleware
    )
    assert parameters(exception.convert_exception_to_response) == [
        ("get_response", inspect.Parameter.empty)
    ]
    assert parameters(BaseHandler.adapt_method_mode) == [
        ("self", inspect.Parameter.empty),
        ("is_async", inspect.Parameter.empty),
        ("method", inspect.Parameter.empty),
        ("method_is_async", None),
        ("debug", False),
        ("name", None),
    ]


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("read_body", ["self", "receive"]),
        ("create_request", ["self", "scope", "body_file"]),
        ("run_get_response", ["self", "request"]),
        ("send_response", ["self", "response", "send"]),
        ("listen_for_disconnect", ["self", "receive"]),
    ],
)
def test_the_asgi_plumbing_the_handler_calls_keeps_its_shape(method, arguments):
    assert [name for name, _ in parameters(getattr(ASGIHandler, method))] == arguments


def test_the_chain_is_async_and_ignores_the_sites_middleware(settings):
    settings.MIDDLEWARE = ["no.such.Middleware"]  # would fail to import if it were read
    handler = ApiASGIHandler()

    assert iscoroutinefunction(handler._middleware_chain)
    assert handler._view_middleware == handler._exception_middleware == []


class Wrapping:
    """An async middleware that remembers what it was given to wrap."""

    async_capable, sync_capable = True, False
    made: list[Wrapping] = []

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)
        Wrapping.made.append(self)

    async def __call__(self, request):
        return await self.get_response(request)


def test_a_listed_middleware_wraps_the_async_chain():
    class Api(ApiASGIHandler):
        middleware = (f"{__name__}.Wrapping",)

    Wrapping.made.clear()
    chain = Api()._middleware_chain

    [made] = Wrapping.made
    assert iscoroutinefunction(chain) and iscoroutinefunction(made.get_response)


def test_a_middleware_that_would_hop_to_a_thread_is_refused():
    class Api(ApiASGIHandler):
        middleware = ("django.contrib.messages.middleware.MessageMiddleware",)

    with pytest.raises(ImproperlyConfigured, match="MessageMiddleware"):
        Api()
