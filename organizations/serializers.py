from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from organizations.models import ApiKey, Invitation, Membership, Organization
from organizations.roles import Role


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "plan", "is_suspended", "created_at"]
        read_only_fields = ["id", "slug", "plan", "is_suspended", "created_at"]


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "is_revoked",
            "rate_limit_per_minute",
            "rate_limit_per_hour",
            "rate_limit_per_day",
            "tokens_per_minute",
            "monthly_budget_usd",
        ]
        read_only_fields = [
            "id",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "is_revoked",
        ]

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created_at"]
        read_only_fields = ["id", "email", "name", "created_at"]


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at", "accepted_at"]
        read_only_fields = ["id", "created_at", "expires_at", "accepted_at"]
