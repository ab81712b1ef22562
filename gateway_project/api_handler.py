"""The ASGI handler of the public API: Django's, minus its per-request thread hops.

Django's ASGIHandler opens a ThreadSensitiveContext per request and calls the request_started
receivers and response.close() through sync_to_async: a thread hand-off each, on every request.
The API never touches the ORM on the request's own thread (its database work runs in worker
threads), so here those receivers run inline on the event loop: they only close this thread's
database connections, and it has none. Disconnects are still detected, so a client that hangs
up cancels its request (and a stream is settled for what it received).
"""

from __future__ import annotations

import asyncio
import contextlib

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix


class ApiASGIHandler(ASGIHandler):
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
        try:
            if request is None:
                await self.send_response(error_response, send)
                error_response.close()
                return
            response = await self._serve_until_done_or_disconnected(request, receive, send)
            if response is None:
                signals.request_finished.send(sender=self.__class__)
            else:
                response.close()
        finally:
            body_file.close()

    async def _serve_until_done_or_disconnected(self, request, receive, send):
        async def serve():
            response = await self.run_get_response(request)
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
