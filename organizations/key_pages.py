"""Dashboard pages for API keys: list with last use, create (secret shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from organizations import tenancy
from organizations.api_keys import can_revoke, mint_api_key, revoke_api_key, visible_keys
from organizations.decorators import require_role, tenant_page
from organizations.forms import ApiKeyForm

TEMPLATE = "organizations/keys.html"
LIMIT_FIELDS = [
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "rate_limit_per_day",
    "tokens_per_minute",
    "monthly_budget_usd",
]


@require_http_methods(["GET", "POST"])
@tenant_page()
def keys(request):
    tenant = request.tenant
    form = ApiKeyForm(request.POST or None)
    context = {"form": form, "can_create": tenant.can("create_own_key")}
    status = 200
    if request.method == "POST":
        require_role(request, "create_own_key")
        if form.is_valid():
            key, secret = mint_api_key(
                tenant.organization, created_by=request.user, **form.key_arguments()
            )
            # Rendered, never redirected or stored: the only time the secret is shown.
            context |= {"new_key": key, "secret": secret, "form": ApiKeyForm()}
            status = 201
        else:
            status = 400
            context["limits_have_errors"] = bool(set(form.errors) & set(LIMIT_FIELDS))
    rows = list(visible_keys(tenant).order_by("is_revoked", "-created_at"))
    context["keys"] = [(key, can_revoke(tenant, key)) for key in rows]
    context["base_url"] = request.build_absolute_uri("/v1")
    return render(request, TEMPLATE, context, status=status)


@require_http_methods(["GET", "POST"])
@tenant_page()
def revoke(request, pk):
    key = tenancy.get_api_key_for_org(request.tenant.organization, pk)
    if not can_revoke(request.tenant, key):
        raise PermissionDenied("Members can revoke only the keys they created.")
    if request.method == "POST":
        revoke_api_key(key)
        messages.success(request, f"The key “{key.name}” is revoked; the API refuses it now.")
        return redirect("organizations:keys")
    return render(request, "organizations/revoke_key.html", {"key": key})
