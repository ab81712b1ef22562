"""The auth part of the management API: register, log in, who am I, switch organisation."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import User
from accounts.serializers import LoginSerializer, RegisterSerializer, SwitchOrganizationSerializer
from organizations.authentication import BearerTokenAuthentication
from organizations.memberships import create_organization
from organizations.models import ApiKey
from organizations.serializers import OrganizationSerializer
from organizations.tenancy import ensure_current_organization, memberships_of, switch_organization


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
    authentication_classes = [BearerTokenAuthentication]  # only for the 401 challenge header
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
            token = Token.objects.create(user=user)
        return Response(
            {"token": token.key, "user": describe_user(user)}, status=status.HTTP_201_CREATED
        )


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = [BearerTokenAuthentication]  # only for the 401 challenge header
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=LoginSerializer, responses=OpenApiTypes.OBJECT)
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
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "token_type": "Bearer"})


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, ApiKey):
            raise AuthenticationFailed("API keys do not log out; revoke the key instead.")
        Token.objects.filter(user=request.user).delete()
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
