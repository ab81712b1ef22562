"""The auth part of the management API that knows only users: log in (JWT), refresh, log out.

Logging in returns a short-lived access token and a refresh token (djangorestframework-simplejwt).
A refresh token is good for one refresh: it returns a new pair and blacklists the old refresh
token; logging out blacklists it. Browsers use the session instead (django-allauth). Register,
who am I and switch organisation answer with organisations: organizations/auth_api.py.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from accounts.authentication import BearerChallenge
from accounts.models import User
from accounts.serializers import LoginSerializer, RefreshSerializer, TokenPairSerializer


def issue_tokens(user: User) -> dict:
    """A new access + refresh pair (the refresh token is recorded, so it can be revoked)."""
    refresh = RefreshToken.for_user(user)
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = [BearerChallenge]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=LoginSerializer, responses=TokenPairSerializer)
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            email=serializer.validated_data["email"].lower(),
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong e-mail or password.")
        return Response(issue_tokens(user))


class RefreshView(TokenRefreshView):
    """{"refresh"} -> a new access token and a new refresh token; the old one stops working."""

    authentication_classes = [BearerChallenge]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=RefreshSerializer, responses=TokenPairSerializer)
    def post(self, request, *args, **kwargs):
        try:
            response = super().post(request, *args, **kwargs)
        except User.DoesNotExist:  # the token outlived its user
            raise AuthenticationFailed(
                "No active account found for the given token.", code="no_active_account"
            ) from None
        response.data = {
            **response.data,
            "token_type": "Bearer",
            "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
        return response


class LogoutView(APIView):
    """Revokes the refresh token; the access token lapses by itself within minutes."""

    permission_classes = [AllowAny]
    authentication_classes = [BearerChallenge]

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            RefreshToken(serializer.validated_data["refresh"]).blacklist()
        except TokenError as error:
            raise AuthenticationFailed(str(error), code="token_not_valid") from error
        return Response(status=status.HTTP_204_NO_CONTENT)
