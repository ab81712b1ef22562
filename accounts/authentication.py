"""DRF authentication of the auth API's endpoints that take their credential in the body."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication


class BearerChallenge(BaseAuthentication):
    """For the endpoints whose credential is in the body (register, login, refresh, logout):
    authenticates nobody, so a stale access token left in the header cannot stand in the way,
    and only names the scheme, so a refusal is a 401 with WWW-Authenticate."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerChallengeScheme(OpenApiAuthenticationExtension):
    """These endpoints need no token: no requirement, no scheme of their own."""

    target_class = BearerChallenge
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []
