"""DRF permission: the request acts on an organisation, with a role allowed to do the action."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from organizations.models import ApiKey
from organizations.tenancy import get_context_for_request


class OrgPermission(BasePermission):
    """Views declare `action_for_method = {"GET": "read", "POST": "create_own_key", ...}`.

    Sets `request.tenant` (a TenantContext). API keys reach only views that allow them.
    """

    message = "You do not have permission to do this in this organization."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey) and not getattr(view, "allow_api_keys", False):
            self.message = "API keys cannot use this endpoint; log in instead."
            return False
        tenant = get_context_for_request(request)
        if tenant is None:
            self.message = "You do not belong to any organization."
            return False
        request.tenant = tenant
        action = view.action_for_method.get(request.method, "read")
        return tenant.can(action)
