"""Dashboard pages for the team: members and roles, invitations. The management API's rules
(organizations.memberships) decide; these views parse, call one function and render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from organizations import memberships, tenancy
from organizations.decorators import require_role, tenant_page
from organizations.forms import InvitationForm, RoleForm
from organizations.models import Invitation, Membership
from organizations.roles import RANK, Role

TEMPLATE = "organizations/team.html"
RULE_ERRORS = (PermissionError, memberships.RuleViolation)


def _team_context(request, invite_form=None, errors=None) -> dict:
    tenant = request.tenant
    org = tenant.organization
    rank = Case(
        *[When(role=role, then=Value(-n)) for role, n in RANK.items()],
        output_field=IntegerField(),
    )
    members = list(
        Membership.objects.for_org(org).select_related("user").order_by(rank, "created_at")
    )
    can_manage = tenant.can("manage_members")
    invitations = []
    if can_manage:
        invitations = list(
            Invitation.objects.for_org(org).filter(accepted_at__isnull=True).order_by("-created_at")
        )
    # Roles this user may grant: up to their own, and owner only by owners.
    grantable = [(value, label) for value, label in Role.choices if _may_grant(tenant.role, value)]
    return {
        "members": members,
        "invitations": invitations,
        "can_manage": can_manage,
        "grantable_roles": grantable,
        "invite_form": invite_form or _invite_form(grantable),
        "errors": errors or {},
    }


def _may_grant(actor_role: str, role: str) -> bool:
    try:
        memberships.check_can_assign_role(actor_role, None, role)
    except RULE_ERRORS:
        return False
    return True


def _invite_form(grantable, data=None) -> InvitationForm:
    form = InvitationForm(data)
    form.fields["role"].choices = grantable
    return form


@require_GET
@tenant_page()
def team(request):
    return render(request, TEMPLATE, _team_context(request))


@require_POST
@tenant_page("manage_members")
def invite(request):
    tenant = request.tenant
    grantable = _team_context(request)["grantable_roles"]
    form = _invite_form(grantable, request.POST)
    if form.is_valid():
        try:
            invitation = memberships.invite(
                tenant.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                actor_role=tenant.role,
            )
        except RULE_ERRORS as error:
            form.add_error("email", str(error))
        else:
            url = memberships.send_invitation_email(invitation, request)
            messages.success(
                request,
                f"Invitation sent to {invitation.email}. They can also use this link: {url}",
            )
            return redirect("organizations:team")
    return render(request, TEMPLATE, _team_context(request, invite_form=form), status=400)


@require_POST
@tenant_page("manage_members")
def change_role(request, pk):
    tenant = request.tenant
    membership = tenancy.get_membership_for_org(tenant.organization, pk)
    form = RoleForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Choose one of the roles."
    else:
        try:
            memberships.change_role(membership, form.cleaned_data["role"], actor_role=tenant.role)
        except RULE_ERRORS as exc:
            error = str(exc)
    if error:
        context = _team_context(request, errors={membership.pk: error})
        return render(request, TEMPLATE, context, status=400)
    messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    return redirect("organizations:team")


@require_http_methods(["GET", "POST"])
@tenant_page()
def remove(request, pk):
    """Remove a member (admins), or leave (anyone), after a confirmation."""
    tenant = request.tenant
    membership = tenancy.get_membership_for_org(tenant.organization, pk)
    is_self = membership.user_id == request.user.pk
    if not is_self and not tenant.can("manage_members"):
        raise PermissionDenied("Only admins and owners can remove members.")
    context = {"membership": membership, "is_self": is_self}
    if request.method == "POST":
        try:
            memberships.remove_member(membership, actor_role=tenant.role, is_self=is_self)
        except RULE_ERRORS as error:
            context["error"] = str(error)
            return render(request, "organizations/remove_member.html", context, status=400)
        if is_self:
            messages.success(request, f"You left {tenant.organization.name}.")
            return redirect("home")
        messages.success(request, f"{membership.user.email} was removed.")
        return redirect("organizations:team")
    return render(request, "organizations/remove_member.html", context)


@require_POST
@tenant_page()
def cancel_invitation(request, pk):
    require_role(request, "manage_members")
    invitation = tenancy.get_invitation_for_org(request.tenant.organization, pk)
    invitation.delete()
    messages.success(request, f"The invitation to {invitation.email} is cancelled.")
    return redirect("organizations:team")
