"""DRF authentication for the management API: `Authorization: Bearer <token>`.

A bearer value starting with `gw-` is an organisation API key (it may read the usage API);
anything else is a login token from POST /api/auth/login.
"""

from __future__ import annotations

import re

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from organizations.api_keys import KEY_PREFIX, find_api_key

# A gateway key anywhere in the query string (it would be written to access logs).
KEY_IN_QUERY = re.compile(r"(?:^|[=&])gw-[0-9a-f]{4,16}_")


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"

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
