"""Management API for the current organisation: API keys, members, invitations, settings."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from organizations import memberships, tenancy
from organizations.api_keys import can_revoke, mint_api_key, revoke_api_key, visible_keys
from organizations.authentication import ApiKeyUser
from organizations.models import Invitation, Membership
from organizations.permissions import OrgPermission
from organizations.serializers import (
    ApiKeySerializer,
    InvitationSerializer,
    MembershipSerializer,
    OrganizationSerializer,
    RoleSerializer,
)


class TenantView(APIView):
    permission_classes = [IsAuthenticated, OrgPermission]
    action_for_method: dict[str, str] = {}


class ApiKeyListView(TenantView):
    action_for_method = {"GET": "read", "POST": "create_own_key"}

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request):
        return Response(ApiKeySerializer(visible_keys(request.tenant), many=True).data)

    @extend_schema(
        request=ApiKeySerializer,
        responses=inline_serializer(
            "NewApiKey", {"key": serializers.CharField(), "api_key": ApiKeySerializer()}
        ),
    )
    def post(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = mint_api_key(
            request.tenant.organization, created_by=request.user, **serializer.validated_data
        )
        # The only time the secret is ever shown.
        return Response(
            {"key": secret, "api_key": ApiKeySerializer(key).data}, status=status.HTTP_201_CREATED
        )


class ApiKeyDetailView(TenantView):
    action_for_method = {"GET": "read", "DELETE": "create_own_key"}

    @extend_schema(responses=ApiKeySerializer)
    def get(self, request, pk):
        key = tenancy.get_api_key_for_org(request.tenant.organization, pk)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        key = tenancy.get_api_key_for_org(request.tenant.organization, pk)
        if not can_revoke(request.tenant, key):
            raise PermissionError("Members can revoke only the keys they created.")
        revoke_api_key(key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationView(TenantView):
    allow_api_keys = True  # keys act as members: they may read, not change or delete
    action_for_method = {"GET": "read", "PATCH": "manage_settings", "DELETE": "delete_organization"}

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(request.tenant.organization).data)

    @extend_schema(request=OrganizationSerializer, responses=OrganizationSerializer)
    def patch(self, request):
        org = request.tenant.organization
        serializer = OrganizationSerializer(org, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        memberships.delete_organization(request.tenant.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListView(TenantView):
    action_for_method = {"GET": "read"}

    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request):
        members = Membership.objects.for_org(request.tenant.organization).select_related("user")
        return Response(MembershipSerializer(members.order_by("created_at"), many=True).data)


class MemberDetailView(TenantView):
    # Leaving is allowed to everyone; the check is in delete().
    action_for_method = {"GET": "read", "PATCH": "manage_members", "DELETE": "read"}

    @extend_schema(responses=MembershipSerializer)
    def get(self, request, pk):
        membership = tenancy.get_membership_for_org(request.tenant.organization, pk)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=RoleSerializer, responses=MembershipSerializer)
    def patch(self, request, pk):
        membership = tenancy.get_membership_for_org(request.tenant.organization, pk)
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = memberships.change_role(
            membership, serializer.validated_data["role"], actor_role=request.tenant.role
        )
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        membership = tenancy.get_membership_for_org(request.tenant.organization, pk)
        is_self = membership.user_id == request.user.pk
        if not is_self and not request.tenant.can("manage_members"):
            raise PermissionError("Only admins and owners can remove members.")
        memberships.remove_member(membership, actor_role=request.tenant.role, is_self=is_self)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(TenantView):
    action_for_method = {"GET": "manage_members", "POST": "manage_members"}

    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request):
        invitations = Invitation.objects.for_org(request.tenant.organization).filter(
            accepted_at__isnull=True
        )
        return Response(InvitationSerializer(invitations, many=True).data)

    @extend_schema(
        request=InvitationSerializer,
        responses=inline_serializer(
            "NewInvitation",
            {"invitation": InvitationSerializer(), "accept_url": serializers.CharField()},
        ),
    )
    def post(self, request):
        serializer = InvitationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = memberships.invite(
            request.tenant.organization,
            invited_by=request.user,
            actor_role=request.tenant.role,
            **serializer.validated_data,
        )
        url = memberships.send_invitation_email(invitation, request)
        return Response(
            {"invitation": InvitationSerializer(invitation).data, "accept_url": url},
            status=status.HTTP_201_CREATED,
        )


class InvitationDetailView(TenantView):
    action_for_method = {"DELETE": "manage_members"}

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        tenancy.get_invitation_for_org(request.tenant.organization, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class AcceptInvitationView(APIView):
    """Any signed-in user whose e-mail matches the invitation may accept it."""

    @extend_schema(request=None, responses=MembershipSerializer)
    def post(self, request, token):
        if isinstance(request.user, ApiKeyUser):
            raise PermissionError("A signed-in person accepts an invitation, not an API key.")
        membership = memberships.accept_invitation(token, request.user)
        return Response(
            {
                "organization": OrganizationSerializer(membership.organization).data,
                "role": membership.role,
            }
        )
