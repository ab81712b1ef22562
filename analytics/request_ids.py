"""Middleware giving every HTTP request a request id: the client's `X-Request-ID` when it is sane,
else a new one. It is current for the whole request (log lines, queued Celery tasks), available as
`request.request_id`, and echoed in the response's `X-Request-ID`. Sync and async capable, so async
views never hop to a thread for it."""

from __future__ import annotations

import re

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from analytics.logs import new_request_id, request_id_var

HEADER = "X-Request-ID"
ACCEPTABLE = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def choose_request_id(incoming: str | None) -> str:
    return incoming if incoming and ACCEPTABLE.match(incoming) else new_request_id()


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
        token = self._begin(request)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        token = self._begin(request)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request.request_id
        return response

    @staticmethod
    def _begin(request):
        request.request_id = choose_request_id(request.headers.get(HEADER))
        return request_id_var.set(request.request_id)
