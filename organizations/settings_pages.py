"""The organisation's settings page. Alert recipients are a section served by analytics."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from organizations.decorators import require_role, tenant_page
from organizations.forms import OrganizationSettingsForm

FIELDS = ["name", "default_route_alias", "cache_enabled", "cache_ttl_seconds", "prompt_logging"]


@require_http_methods(["GET", "POST"])
@tenant_page()
def settings_page(request):
    tenant = request.tenant
    form = OrganizationSettingsForm(request.POST or None, instance=tenant.organization)
    can_edit = tenant.can("manage_settings")
    if request.method == "POST":
        require_role(request, "manage_settings")
        if form.is_valid():
            form.instance.save(update_fields=FIELDS)
            messages.success(request, "Settings saved.")
            return redirect("organizations:settings")
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "organizations/settings.html", {"form": form, "can_edit": can_edit}, status=status
    )
