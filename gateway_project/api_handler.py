"""The ASGI handler of the public API: Django's, minus its per-request thread hops.

Django's ASGIHandler opens a ThreadSensitiveContext per request and calls the request_started
receivers and response.close() through sync_to_async: a thread hand-off each, on every request.
The API never touches the ORM on the request's own thread (its database work runs in worker
threads), so here those receivers run inline on the event loop: they only close this thread's
database connections, and it has none. Disconnects are still detected, so a client that hangs
up cancels its request (and a stream is settled for what it received).

Its middleware is the explicit list below, not settings.MIDDLEWARE: sessions, CSRF, messages,
allauth and static files are browser concerns, and Django runs a sync middleware's hooks in a
thread per request. The request id, which the site sets in a middleware, is bound here around
the whole request, so a streamed body and the settlement it starts log under it too.
tests/api/test_api_handler.py pins the Django internals this relies on.
"""

from __future__ import annotations

import asyncio
import contextlib

from django.core import signals
from django.core.exceptions import ImproperlyConfigured, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

from analytics.logs import request_id_var
from analytics.request_ids import HEADER, bind_request_id


class ApiASGIHandler(ASGIHandler):
    # Dotted paths, outermost first. Only async middleware without process_* hooks: Django runs
    # those hooks in a thread on every request, and the chain below has no place for some.
    middleware: tuple[str, ...] = ()

    def load_middleware(self, is_async: bool = False) -> None:
        """Django's BaseHandler.load_middleware over `middleware`, for the async path alone."""
        if not is_async:
            raise ImproperlyConfigured("The API's handler serves ASGI only.")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(self.middleware):
            factory = import_string(path)
            hooks = [name for name in dir(factory) if name.startswith("process_")]
            if not getattr(factory, "async_capable", False) or hooks:
                raise ImproperlyConfigured(f"{path} cannot run in the API's handler.")
            handler = convert_exception_to_response(factory(handler))
        self._middleware_chain = handler

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"The API serves HTTP, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            await self.send_response(error_response, send)
            error_response.close()
            body_file.close()
            return
        token = bind_request_id(request)
        try:
            response = await self._serve_until_done_or_disconnected(request, receive, send)
            if response is None:
                signals.request_finished.send(sender=self.__class__)
            else:
                response.close()
        finally:
            request_id_var.reset(token)
            body_file.close()

    async def _serve_until_done_or_disconnected(self, request, receive, send):
        async def serve():
            response = await self.run_get_response(request)
            response[HEADER] = request.request_id
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            return response

        disconnect = asyncio.create_task(self.listen_for_disconnect(receive))
        serving = asyncio.create_task(serve())
        await asyncio.wait([disconnect, serving], return_when=asyncio.FIRST_COMPLETED)
        for task in (disconnect, serving):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif task is disconnect:
                with contextlib.suppress(RequestAborted):
                    task.result()
        try:
            return serving.result()
        except asyncio.CancelledError:
            return None
