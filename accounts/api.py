"""The auth part of the management API: register, log in (JWT), refresh, log out, who am I,
switch organisation.

Logging in returns a short-lived access token and a refresh token (djangorestframework-simplejwt).
A refresh token is good for one refresh: it returns a new pair and blacklists the old refresh
token; logging out blacklists it. Browsers use the session instead (django-allauth).
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from accounts.models import User
from accounts.serializers import (
    LoginSerializer,
    RefreshSerializer,
    RegisterSerializer,
    SwitchOrganizationSerializer,
    TokenPairSerializer,
)
from organizations.authentication import BearerChallenge
from organizations.memberships import create_organization
from organizations.models import ApiKey
from organizations.serializers import OrganizationSerializer
from organizations.tenancy import ensure_current_organization, memberships_of, switch_organization


def issue_tokens(user: User) -> dict:
    """A new access + refresh pair (the refresh token is recorded, so it can be revoked)."""
    refresh = RefreshToken.for_user(user)
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


def describe_user(user: User) -> dict:
    current = ensure_current_organization(user)
    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "current_organization": OrganizationSerializer(current).data if current else None,
        "organizations": [
            {**OrganizationSerializer(m.organization).data, "role": m.role}
            for m in memberships_of(user)
        ],
    }


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = [BearerChallenge]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=RegisterSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            user = User.objects.create_user(data["email"], data["password"])
            create_organization(name=data["organization_name"], owner=user)
            tokens = issue_tokens(user)
        return Response({**tokens, "user": describe_user(user)}, status=status.HTTP_201_CREATED)


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


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        if isinstance(request.auth, ApiKey):
            raise AuthenticationFailed("Log in as a user to see your profile.")
        return Response(describe_user(request.user))


class SwitchOrganizationView(APIView):
    @extend_schema(request=SwitchOrganizationSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        if isinstance(request.auth, ApiKey):
            raise AuthenticationFailed("API keys belong to one organization.")
        serializer = SwitchOrganizationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        switch_organization(request.user, serializer.validated_data["organization"])
        return Response(describe_user(request.user))
