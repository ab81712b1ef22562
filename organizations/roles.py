"""Who may do what inside an organisation. The one table of role rules."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

# action -> the least role allowed to do it (each role can do everything below it too)
MINIMUM_ROLE = {
    "read": Role.VIEWER,
    "use_api": Role.MEMBER,
    "create_own_key": Role.MEMBER,
    "manage_keys": Role.ADMIN,
    "manage_members": Role.ADMIN,
    "manage_settings": Role.ADMIN,
    "manage_billing": Role.OWNER,
    "delete_organization": Role.OWNER,
}


def can(role: str, action: str) -> bool:
    return RANK[Role(role)] >= RANK[MINIMUM_ROLE[action]]
