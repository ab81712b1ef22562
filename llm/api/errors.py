"""Errors of the public API. One shape per surface:

- OpenAI's, everywhere but Anthropic's route: {"error": {"message", "type", "param", "code"}};
- Anthropic's, on /v1/messages: {"type": "error", "error": {"type", "message"}}
  (https://docs.anthropic.com/en/api/errors).

Every step of the pipeline raises ApiError; the view turns it into one JSON response.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.http import HttpResponse

from llm.api.headers import set_headers
from llm.errors import (
    AllProvidersFailedError,
    GatewayError,
    GatewayTimeoutError,
    ProvidersBackingOffError,
    StructuredOutputError,
    UnknownModelError,
    UnsupportedParameterError,
    UpstreamRejectedError,
)
from organizations.database import RETRY_AFTER_SECONDS

TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}
# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OPENAI, ANTHROPIC = "openai", "anthropic"  # the error shapes


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, shape: str = OPENAI) -> dict[str, Any]:
        if shape == ANTHROPIC:
            error_type = ANTHROPIC_TYPE_FOR_STATUS.get(self.status, "api_error")
            return {"type": "error", "error": {"type": error_type, "message": self.message}}
        error = {
            "message": self.message,
            "type": TYPE_FOR_STATUS.get(self.status, "api_error"),
            "param": self.param,
            "code": self.code,
            **self.extra,
        }
        return {"error": error}

    def response(self, headers: dict[str, str] | None = None, shape: str = OPENAI) -> HttpResponse:
        response = HttpResponse(
            json.dumps(self.body(shape)), status=self.status, content_type="application/json"
        )
        set_headers(response, {**(headers or {}), **self.headers})
        return response


def database_unavailable() -> ApiError:
    """The database is away (restarting, unreachable): a short wait, not a server error."""
    return ApiError(
        503,
        "The gateway's database is unavailable; retry shortly.",
        code="database_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_request")


def from_gateway_error(error: GatewayError) -> ApiError:
    """Map an llm core error to the API's answer; 502/504 name the provider."""
    extra: dict[str, Any] = {}
    message = error.message
    if isinstance(error, UnknownModelError):
        extra["available"] = error.available
        message = f"Unknown model or alias {error.name!r}. Available: {', '.join(error.available)}"
        return ApiError(404, message, param="model", code=error.code, extra=extra)
    if isinstance(error, UnsupportedParameterError):
        extra["models"] = error.models
        return ApiError(400, message, param=error.param, code=error.code, extra=extra)
    if isinstance(error, StructuredOutputError):
        extra.update(error.details())
    if isinstance(error, AllProvidersFailedError) and error.route is not None:
        tried = ", ".join(error.route.providers_tried()) or "none"
        message = f"{message} (providers tried: {tried})"
        extra["providers"] = error.route.providers_tried()
    if isinstance(error, GatewayTimeoutError):
        extra["provider"] = error.last_provider
    if isinstance(error, UpstreamRejectedError):
        extra["provider"] = error.error.provider
    headers = error.route.headers() if error.route is not None else {}
    if isinstance(error, ProvidersBackingOffError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return ApiError(error.http_status, message, code=error.code, headers=headers, extra=extra)
