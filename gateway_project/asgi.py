"""ASGI entry point.

The public API (/v1/, /api/v1/) is served by its own Django handler (api_handler.py) with no
middleware: sessions, CSRF, messages, allauth and static files are browser concerns, and Django
middleware runs its hooks through a thread per request. Everything else goes to the full stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test.utils import override_settings

from analytics.logs import redact_server_logs
from gateway_project.api_handler import ApiASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django.setup(set_prefix=False)
redact_server_logs()  # the access log must never show a key sent in a query string

API_PREFIXES = ("/v1/", "/api/v1/")


site = ASGIHandler()
with override_settings(MIDDLEWARE=settings.GATEWAY_API_MIDDLEWARE):
    # The handler builds its middleware chain now and keeps it.
    api = ApiASGIHandler()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
        return await api(scope, receive, send)
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    return await site(scope, receive, send)


async def _lifespan(receive, send) -> None:
    """Start-up: this process's heartbeat (its in-flight requests are swept if it dies) and its
    listener for key revocations. Graceful shutdown: settle pending calls and flush buffered usage
    records before exiting."""
    from llm.api.auth import listen_for_revocations

    heartbeat = None
    listener: asyncio.Task | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            listener = asyncio.get_running_loop().create_task(listen_for_revocations())
            if settings.REDIS_URL:
                from billing.inflight import keep_alive_forever

                heartbeat = asyncio.get_running_loop().create_task(keep_alive_forever())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            from analytics.recording import aflush_pending_usage
            from llm.api.settlement import drain_background

            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await drain_background()
            await aflush_pending_usage()
            if heartbeat is not None:
                heartbeat.cancel()
            await send({"type": "lifespan.shutdown.complete"})
            return
