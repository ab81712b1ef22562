"""Organisations, their members and invitations: the rules, callable without a request."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from organizations.models import Invitation, Membership, Organization
from organizations.roles import RANK, Role


class RuleViolation(Exception):
    """A request that breaks an organisation rule (the API answers 400 with this message)."""


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_organization(*, name: str, owner) -> Organization:
    org = Organization.objects.create(name=name, slug=_unique_slug(name))
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    if owner.current_organization_id is None:
        owner.current_organization = org
        owner.save(update_fields=["current_organization"])
    return org


def _is_last_owner(membership: Membership) -> bool:
    return (
        membership.role == Role.OWNER
        and not Membership.objects.for_org(membership.organization)
        .filter(role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def check_can_assign_role(actor_role: str, target: Membership | None, new_role: str) -> None:
    """Admins manage members up to admin; only owners grant or take away ownership."""
    if new_role not in Role.values:
        raise RuleViolation(f"Unknown role {new_role!r}; choose one of {', '.join(Role.values)}.")
    touches_owner = new_role == Role.OWNER or (target is not None and target.role == Role.OWNER)
    if touches_owner and actor_role != Role.OWNER:
        raise PermissionError("Only an owner can grant or change the owner role.")
    if RANK[Role(new_role)] > RANK[Role(actor_role)]:
        raise PermissionError("You cannot grant a role above your own.")


@transaction.atomic
def change_role(membership: Membership, new_role: str, *, actor_role: str) -> Membership:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    check_can_assign_role(actor_role, membership, new_role)
    if new_role != Role.OWNER and _is_last_owner(membership):
        raise RuleViolation("The last owner cannot be demoted; make someone else owner first.")
    membership.role = new_role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, actor_role: str, is_self: bool) -> None:
    """Remove a member (admins), or leave (anyone). The last owner can do neither."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not is_self and membership.role == Role.OWNER and actor_role != Role.OWNER:
        raise PermissionError("Only an owner can remove an owner.")
    if _is_last_owner(membership):
        raise RuleViolation("The last owner cannot leave; make someone else owner first.")
    user = membership.user
    membership.delete()
    if user.current_organization_id == membership.organization_id:
        user.current_organization = None
        user.save(update_fields=["current_organization"])


def invite(org: Organization, *, email: str, role: str, invited_by, actor_role: str) -> Invitation:
    check_can_assign_role(actor_role, None, role)
    email = email.strip().lower()
    if Membership.objects.for_org(org).filter(user__email__iexact=email).exists():
        raise RuleViolation(f"{email} is already a member.")
    return Invitation.objects.create(
        organization=org, email=email, role=role, invited_by=invited_by
    )


@transaction.atomic
def accept_invitation(token: str, user) -> Membership:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(token=token)
        .first()
    )
    if invitation is None or invitation.accepted_at is not None:
        raise LookupError("This invitation does not exist or was already used.")
    if invitation.is_expired:
        raise RuleViolation("This invitation has expired; ask for a new one.")
    if invitation.email.lower() != user.email.lower():
        raise PermissionError("This invitation was sent to another e-mail address.")
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    user.current_organization = invitation.organization
    user.save(update_fields=["current_organization"])
    return membership


def delete_organization(org: Organization) -> None:
    org.delete()


def send_invitation_email(invitation: Invitation, request=None) -> str:
    """E-mail the invitation link; returns the link (also shown to the inviter)."""
    from django.core.mail import send_mail
    from django.urls import reverse

    path = reverse("organizations:accept-invitation", args=[invitation.token])
    url = request.build_absolute_uri(path) if request is not None else path
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on LLM Gateway",
        message=f"Join {invitation.organization.name} as {invitation.role}: {url}\n"
        f"The link expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
        from_email=None,
        recipient_list=[invitation.email],
    )
    return url
