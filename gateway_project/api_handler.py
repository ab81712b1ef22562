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
        """Serve in this task; a listener task cancels it if the client hangs up first.

        One task beside the server's per request, not two: Django's handler serves in a task of
        its own as well, and an open stream would hold both (with their coroutines and contexts)
        for its whole length. The response is None if the client left before it was built."""
        serving = asyncio.current_task()
        state = {"gone": False, "finished": False}

        def on_listener_done(listener: asyncio.Task) -> None:
            if listener.cancelled() or state["finished"]:
                return  # ended by us, or after the answer was done: nothing to stop
            if isinstance(listener.exception(), RequestAborted):
                state["gone"] = True
                serving.cancel()

        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        listener.add_done_callback(on_listener_done)
        response = None
        try:
            response = await self.run_get_response(request)
            response[HEADER] = request.request_id
            await self.send_response(response, send)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise  # cancelled from outside (the server stopping): not ours to swallow
            serving.uncancel()
        finally:
            state["finished"] = True
            listener.cancel()
        return response
