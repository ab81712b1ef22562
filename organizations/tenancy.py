"""The one door to tenant data.

Answers "which organisation is this?" for a dashboard or management-API request (user + chosen
organisation), an API request (API key) and a Celery task (org id), and is the only code that
fetches tenant objects by id: `get_<thing>_for_org(org, id)` returns the object or raises
Http404, the same answer whether the id does not exist or belongs to another organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from organizations.models import ApiKey, Invitation, Membership, Organization
from organizations.roles import can

ORG_HEADER = "HTTP_X_ORGANIZATION"  # a script may pick the organisation by slug per request


@dataclass(frozen=True)
class TenantContext:
    """Who acts, on which organisation, with which role (API keys act as members)."""

    organization: Organization
    role: str
    user: object | None = None
    api_key: ApiKey | None = None

    def can(self, action: str) -> bool:
        return can(self.role, action)


def memberships_of(user) -> list[Membership]:
    return list(
        Membership.objects.select_related("organization")
        .filter(user=user)
        .order_by("organization__name")
    )


def ensure_current_organization(user) -> Organization | None:
    """Make sure user.current_organization is one the user still belongs to."""
    membership = None
    if user.current_organization_id:
        membership = Membership.objects.filter(
            user=user, organization_id=user.current_organization_id
        ).first()
    if membership is None:
        membership = Membership.objects.filter(user=user).order_by("created_at").first()
        user.current_organization = membership.organization if membership else None
        user.save(update_fields=["current_organization"])
    return user.current_organization


def get_context_for_user(user, org_slug: str | None = None) -> TenantContext | None:
    """The organisation a signed-in user acts on: the one named, else the current one."""
    memberships = Membership.objects.select_related("organization").filter(user=user)
    if org_slug:
        membership = memberships.filter(organization__slug=org_slug).first()
        if membership is None:
            raise Http404("No such organization.")
    else:
        membership = memberships.filter(organization_id=user.current_organization_id).first()
        if membership is None:
            org = ensure_current_organization(user)
            membership = memberships.filter(organization=org).first() if org else None
    if membership is None:
        return None
    return TenantContext(organization=membership.organization, role=membership.role, user=user)


def get_context_for_request(request) -> TenantContext | None:
    """For DRF and dashboard requests: an API key's org, or the signed-in user's chosen org."""
    api_key = getattr(request, "auth", None)
    if isinstance(api_key, ApiKey):
        return context_for_api_key(api_key)
    user = request.user
    if not user.is_authenticated:
        return None
    return get_context_for_user(user, request.META.get(ORG_HEADER))


def context_for_api_key(key: ApiKey) -> TenantContext:
    # An API key acts with member rights on its own organisation.
    return TenantContext(organization=key.organization, role="member", api_key=key)


def get_organization_for_task(org_id: int) -> Organization:
    """For Celery tasks, which take ids, never objects."""
    return Organization.objects.get(pk=org_id)


def switch_organization(user, org_slug: str) -> Organization:
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )
    if membership is None:
        raise Http404("No such organization.")
    user.current_organization = membership.organization
    user.save(update_fields=["current_organization"])
    return membership.organization


def _get_for_org(queryset, org: Organization, pk):
    try:
        return queryset.for_org(org).get(pk=int(pk))
    except (ValueError, TypeError, queryset.model.DoesNotExist):
        raise Http404(f"No such {queryset.model._meta.verbose_name}.") from None


def get_api_key_for_org(org: Organization, pk) -> ApiKey:
    return _get_for_org(ApiKey.objects.select_related("created_by"), org, pk)


def get_membership_for_org(org: Organization, pk) -> Membership:
    return _get_for_org(Membership.objects.select_related("user"), org, pk)


def get_invitation_for_org(org: Organization, pk) -> Invitation:
    return _get_for_org(Invitation.objects.all(), org, pk)


def get_for_org(queryset, org: Organization, pk):
    """Any tenant model's row by id, or 404 (apps whose models this module cannot import)."""
    return _get_for_org(queryset, org, pk)
