"""Minting and checking API keys.

A key reads `gw-<public id>_<secret>`. The public id finds the row with one indexed query; the
secret's SHA-256 is compared in constant time. A SHA-256 is enough because the secret has 256 bits
of entropy: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from organizations.models import ApiKey, Organization
from organizations.revocations import announce_key_revoked

KEY_PREFIX = "gw-"
PUBLIC_ID_BYTES = 6  # 12 hex characters
SECRET_BYTES = 32


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(raw_key: str) -> tuple[str, str] | None:
    """`gw-<public id>_<secret>` -> (public id, secret), or None if it is not of that form."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    public_id, sep, secret = raw_key[len(KEY_PREFIX) :].partition("_")
    if not sep or not public_id or not secret or len(public_id) > 16:
        return None
    return public_id, secret


def mint_api_key(
    org: Organization,
    *,
    name: str,
    created_by: AbstractBaseUser | None,
    expires_at: datetime | None = None,
    **limits,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full secret key, which is never available again."""
    public_id = secrets.token_hex(PUBLIC_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey.objects.create(
        organization=org,
        name=name,
        public_id=public_id,
        secret_hash=hash_secret(secret),
        created_by=created_by,
        expires_at=expires_at,
        **limits,
    )
    return key, f"{KEY_PREFIX}{public_id}_{secret}"


def find_api_key(raw_key: str) -> ApiKey | None:
    """The usable key row for a raw key (organisation joined), or None. One indexed query."""
    parts = split_key(raw_key)
    if parts is None:
        return None
    public_id, secret = parts
    key = ApiKey.objects.select_related("organization").filter(public_id=public_id).first()
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    return key if key.is_usable else None


PLAYGROUND_KEY_NAME = "Playground"


def get_playground_key(org: Organization, user: AbstractBaseUser) -> ApiKey:
    """The key the dashboard's playground bills a member's requests to (made on first use)."""
    key = (
        ApiKey.objects.for_org(org)
        .filter(created_by=user, name=PLAYGROUND_KEY_NAME, is_revoked=False, expires_at=None)
        .first()
    )
    return key or mint_api_key(org, name=PLAYGROUND_KEY_NAME, created_by=user)[0]


def visible_keys(tenant):
    """Admins and viewers see every key of the organisation; members see the keys they made."""
    keys = ApiKey.objects.for_org(tenant.organization).select_related("created_by")
    if tenant.can("manage_keys") or tenant.role == "viewer":
        return keys
    return keys.filter(created_by=tenant.user)


def can_revoke(tenant, key: ApiKey) -> bool:
    """Admins revoke any key; members only the keys they created."""
    return tenant.can("manage_keys") or (
        tenant.can("create_own_key") and key.created_by_id == getattr(tenant.user, "pk", None)
    )


def revoke_api_key(key: ApiKey) -> None:
    key.is_revoked = True
    key.save(update_fields=["is_revoked"])
    announce_key_revoked(key.pk)


def touch_api_key(key: ApiKey) -> None:
    """Record use, at most once a minute per key so the hot path does not write on every call."""
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
