"""DRF authentication for the management API: `Authorization: Bearer <token>`.

A bearer value starting with `gw-` is an organisation API key (it may read the usage API);
anything else is a JWT access token from POST /api/auth/login (or /api/auth/refresh).
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header
from rest_framework_simplejwt.authentication import JWTAuthentication

from organizations.api_keys import KEY_PREFIX, find_api_key

# A gateway key anywhere in the query string (it would be written to access logs).
KEY_IN_QUERY = re.compile(r"(?:^|[=&])gw-[0-9a-f]{4,16}_")


class BearerTokenAuthentication(JWTAuthentication):
    def authenticate(self, request):
        if KEY_IN_QUERY.search(request.META.get("QUERY_STRING", "")):
            raise exceptions.ParseError(
                "Send the API key in the Authorization header, never in the URL; rotate this key."
            )
        parts = get_authorization_header(request).split()
        if len(parts) == 2 and parts[0].lower() == b"bearer" and parts[1].startswith(b"gw-"):
            return self._authenticate_api_key(parts[1].decode(errors="replace"))
        return super().authenticate(request)

    def _authenticate_api_key(self, raw_key: str):
        key = find_api_key(raw_key) if raw_key.startswith(KEY_PREFIX) else None
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        if key.organization.is_suspended:
            raise exceptions.PermissionDenied("This organization is suspended.")
        return (ApiKeyUser(key), key)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """How the schema names this authentication (drf-spectacular finds it by target_class)."""

    target_class = BearerTokenAuthentication
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT or API key",
            "description": (
                "A JWT access token from `POST /api/auth/login` (or `/api/auth/refresh`), or on "
                "the endpoints that say so an organisation API key (`gw-…`)."
            ),
        }


class ApiKeyUser:
    """Stands in for request.user when an API key authenticates: authenticated, not a person."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_anonymous = False
    pk = None
    id = None

    def __init__(self, key) -> None:
        self.api_key = key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"
