from __future__ import annotations

from organizations.tenancy import memberships_of


def current_organization(request) -> dict:
    """The navigation bar's organisation switcher: one query for the user's memberships."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = memberships_of(user)
    current = next(
        (m for m in memberships if m.organization_id == user.current_organization_id), None
    )
    return {
        "current_organization": current.organization if current else None,
        "current_role": current.role if current else None,
        "nav_memberships": memberships,
    }
