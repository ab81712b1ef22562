"""Browser pages of the organisations app."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from organizations import memberships, tenancy
from organizations.models import Invitation


def home(request):
    """The landing page: sign up or log in; once signed in, my organisations."""
    context = {}
    if request.user.is_authenticated:
        context["memberships"] = tenancy.memberships_of(request.user)
    return render(request, "organizations/home.html", context)


@login_required
def accept_invitation(request, token):
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    if invitation is None:
        raise Http404("No such invitation.")
    if request.method == "POST":
        try:
            membership = memberships.accept_invitation(token, request.user)
        except (LookupError, PermissionError, memberships.RuleViolation) as exc:
            messages.error(request, str(exc))
            return render(
                request, "organizations/accept_invitation.html", {"invitation": invitation}
            )
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("analytics:overview")
    return render(request, "organizations/accept_invitation.html", {"invitation": invitation})


@login_required
@require_POST
def switch(request):
    tenancy.switch_organization(request.user, request.POST.get("organization", ""))
    return redirect(request.POST.get("next") or "home")
