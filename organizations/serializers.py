from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
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


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True)
    organization_name = serializers.CharField(max_length=100)

    def validate_email(self, value: str) -> str:
        value = value.strip().lower()
        if get_user_model().objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError("A user with this e-mail already exists.")
        return value

    def validate(self, attrs):
        user = get_user_model()(email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], user)
        except Exception as exc:  # django's ValidationError: re-raise as the password field's
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class SwitchOrganizationSerializer(serializers.Serializer):
    organization = serializers.SlugField(help_text="The organization's slug.")
