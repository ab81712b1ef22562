"""The dashboard's door: a signed-in member of the current organisation, with a role that may
do the page's action. Sets `request.tenant`; the server refuses what the templates hide."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from organizations.tenancy import get_context_for_request


def tenant_page(action: str = "read"):
    def decorate(view):
        @login_required
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            tenant = get_context_for_request(request)
            if tenant is None:
                return redirect("home")  # no organisation: the home page offers to create one
            if not tenant.can(action):
                raise PermissionDenied("Your role in this organization cannot do this.")
            request.tenant = tenant
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def require_role(request, action: str) -> None:
    """For a POST inside a page anyone may read: refuse it unless the role allows the action."""
    if not request.tenant.can(action):
        raise PermissionDenied("Your role in this organization cannot do this.")
