from __future__ import annotations

from rest_framework import serializers


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token from login or the last refresh.")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="JWT access token: `Authorization: Bearer <it>`.")
    refresh = serializers.CharField(help_text="Single-use refresh token for /api/auth/refresh.")
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
