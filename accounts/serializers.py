from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from rest_framework import serializers


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


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True)


class SwitchOrganizationSerializer(serializers.Serializer):
    organization = serializers.SlugField(help_text="The organization's slug.")


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token from login or the last refresh.")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="JWT access token: `Authorization: Bearer <it>`.")
    refresh = serializers.CharField(help_text="Single-use refresh token for /api/auth/refresh.")
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
