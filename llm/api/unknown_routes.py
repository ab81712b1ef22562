"""JSON answers for what the public API does not have, under /v1/ and /api/v1/: an unknown path
is a 404 and a known path asked with the wrong method a 405 (with `Allow`), in the error shape of
the surface the path belongs to (Anthropic's under /v1/messages, OpenAI's elsewhere), never an
HTML page a client cannot parse.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from llm.api.errors import ANTHROPIC, OPENAI, ApiError

ANTHROPIC_PREFIX = "/v1/messages"


def shape_for(path: str) -> str:
    return ANTHROPIC if path.startswith(ANTHROPIC_PREFIX) else OPENAI


def method_not_allowed(request, allowed: tuple[str, ...]) -> HttpResponse:
    error = ApiError(
        405,
        f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}.",
        code="method_not_allowed",
        headers={"Allow": ", ".join(allowed)},
    )
    return error.response(shape=shape_for(request.path))


def allow_methods(*allowed: str):
    """Like Django's require_http_methods, but the 405 is JSON in the surface's shape."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        async def checked(request, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            return await view(request, *args, **kwargs)

        return checked

    return decorate


@csrf_exempt
async def unknown_path(request, rest: str = "") -> HttpResponse:
    error = ApiError(
        404,
        f"Unknown path: {request.method} {request.path}. See the README for the endpoints.",
        code="unknown_url",
    )
    return error.response(shape=shape_for(request.path))
