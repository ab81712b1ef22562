"""The management API's one error shape: {"detail": "<sentence>", "code": "<code>"}, plus
"fields": {"<field>": ["<message>", ...]} when input was invalid.

DRF answers in two shapes ({"detail"} and a bare dict of fields); this handler folds both, our
rule errors and unexpected failures into the one above. (The public API under /v1/ speaks
OpenAI's shape instead: llm/api/errors.py.)
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from organizations.database import DATABASE_ERRORS, RETRY_AFTER_SECONDS
from organizations.memberships import RuleViolation

logger = logging.getLogger(__name__)

STATUS_FOR = {
    RuleViolation: (status.HTTP_400_BAD_REQUEST, "rule_violation"),
    PermissionError: (status.HTTP_403_FORBIDDEN, "permission_denied"),
    LookupError: (status.HTTP_404_NOT_FOUND, "not_found"),
}


def error_body(detail: str, code: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if fields:
        body["fields"] = fields
    return body


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_ERRORS):
        return Response(
            error_body("The database is unavailable; retry shortly.", "database_unavailable"),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    for exc_class, (code, name) in STATUS_FOR.items():
        if isinstance(exc, exc_class):
            return Response(error_body(str(exc), name), status=code)
    # DRF answers these two Django exceptions as its own; describe them the same way.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        view = type(context.get("view")).__name__
        logger.exception("Unexpected error in %s", view)
        return Response(error_body("Internal error.", "internal"), status=500)
    response.data = describe_api_exception(exc)
    return response


def describe_api_exception(exc: APIException) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(detail, dict) and "detail" in detail:  # e.g. simplejwt's InvalidToken
        return error_body(str(detail["detail"]), str(detail.get("code", exc.default_code)))
    if isinstance(exc, ValidationError) and isinstance(detail, dict):
        fields = {name: _messages(value) for name, value in detail.items()}
        general = fields.pop("non_field_errors", None)
        if general or not fields:
            return error_body(_first(general or []), "invalid", fields)
        name, messages = next(iter(fields.items()))
        return error_body(f"{name}: {_first(messages)}", "invalid", fields)
    if isinstance(detail, list):
        return error_body(_first(_messages(detail)) or "Invalid input.", "invalid")
    return error_body(str(detail), str(getattr(detail, "code", None) or exc.default_code))


def _messages(value: Any) -> Any:
    """Field errors as plain strings (nested serializers keep their nesting)."""
    if isinstance(value, dict):
        return {key: _messages(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_messages(item) for item in value]
    return str(value)


def _first(messages: Any) -> str:
    while isinstance(messages, dict | list):
        if not messages:
            return "Invalid input."
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return str(messages)


def not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/ (outside the public /api/v1/) answer JSON, not an HTML page."""
    return JsonResponse(error_body(f"No endpoint at {request.path}.", "not_found"), status=404)
