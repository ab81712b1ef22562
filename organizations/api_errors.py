"""Maps our rule errors to HTTP answers for the management API (DRF's shape: {"detail": ...})."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from gateway_project.database import DATABASE_ERRORS, RETRY_AFTER_SECONDS
from organizations.memberships import RuleViolation

STATUS_FOR = {
    RuleViolation: status.HTTP_400_BAD_REQUEST,
    PermissionError: status.HTTP_403_FORBIDDEN,
    LookupError: status.HTTP_404_NOT_FOUND,
}


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_ERRORS):
        return Response(
            {"detail": "The database is unavailable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    for exc_class, code in STATUS_FOR.items():
        if isinstance(exc, exc_class):
            return Response({"detail": str(exc)}, status=code)
    return drf_exception_handler(exc, context)
