"""ASGI entry point.

The public API (/v1/, /api/v1/) is served by its own raw ASGI route to its views (api_handler.py),
without Django's request machinery; everything else goes to Django's full stack. The lifespan
starts and stops what the serving process shares (gateway_project/startup.py) and tunes its
garbage collector for serving (gateway_project/heap.py).
"""

from __future__ import annotations

import os

import django
from django.core.handlers.asgi import ASGIHandler

from analytics.logs import redact_server_logs, skip_unused_record_fields
from gateway_project.api_handler import API_PREFIXES, ApiASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django.setup(set_prefix=False)  # loads the apps; the last one sets up the process

from gateway_project import heap, startup  # noqa: E402  (startup imports models: after setup)

redact_server_logs()  # the access log must never show a key sent in a query string
skip_unused_record_fields()

site = ASGIHandler()
api = ApiASGIHandler()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith(API_PREFIXES):
        return await api(scope, receive, send)
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    return await site(scope, receive, send)


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup.start_serving()
            except Exception as exc:
                # The server must hear it and exit, not wait for a start-up that never completes.
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                raise
            heap.tune_for_serving()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await startup.stop_serving()
            heap.restore_defaults()
            await send({"type": "lifespan.shutdown.complete"})
            return
