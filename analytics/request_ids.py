"""Every HTTP request's id: the client's `X-Request-ID` when it is sane, else a new one.

`bind_request_id(request)` gives the request its id and makes it current for the whole request
(log lines, queued Celery tasks); it is the one way in, used by the middleware of the site and by
the public API's handler (gateway_project/api_handler.py). The id is echoed in the response's
`X-Request-ID`. The middleware is sync and async capable, so async views never hop to a thread.
"""

from __future__ import annotations

import re
from contextvars import Token

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from analytics.logs import new_request_id, request_id_var

HEADER = "X-Request-ID"
# What a client's id may look like (it goes into log lines and a 64-character column).
ACCEPTABLE = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def sane_client_request_id(incoming: str | None) -> str:
    """The client's id if it is acceptable, else ""."""
    return incoming if incoming and ACCEPTABLE.match(incoming) else ""


def bind_request_id(request) -> Token:
    """Set `request.client_request_id` (the client's sane id, or "") and `request.request_id`
    (that id, else a new one), and make the latter current. Returns the token to reset."""
    request.client_request_id = sane_client_request_id(request.headers.get(HEADER))
    request.request_id = request.client_request_id or new_request_id()
    return request_id_var.set(request.request_id)


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = bind_request_id(request)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        token = bind_request_id(request)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request.request_id
        return response
