"""The auth API's endpoints that answer with organisations: register (a user and their first
organisation), who am I (with my organisations), switch organisation. Logging in, refreshing and
logging out know only users: accounts/api.py.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api import issue_tokens
from accounts.authentication import BearerChallenge
from accounts.models import User
from organizations.memberships import create_organization
from organizations.models import ApiKey
from organizations.serializers import (
    OrganizationSerializer,
    RegisterSerializer,
    SwitchOrganizationSerializer,
)
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
