"""E-mails to an organisation's owners about its billing."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mass_mail

from organizations.models import Membership, Organization
from organizations.roles import Role


def get_owner_emails(org: Organization) -> list[str]:
    owners = Membership.objects.for_org(org).filter(role=Role.OWNER).select_related("user")
    return [membership.user.email for membership in owners]


def email_owners(org: Organization, subject: str, body: str) -> int:
    sender = settings.DEFAULT_FROM_EMAIL
    messages = [(subject, body, sender, [email]) for email in get_owner_emails(org)]
    return send_mass_mail(messages, fail_silently=True)


def send_past_due_email(org: Organization, grace_ends_at) -> int:
    return email_owners(
        org,
        f"[{org.name}] Payment failed: please update your card",
        f"Stripe could not collect the latest payment for {org.name}. Your plan stays active "
        f"until {grace_ends_at:%Y-%m-%d %H:%M} UTC; after that the organization moves to the "
        "Free plan. Update the card from the billing page to keep your plan.",
    )


def send_downgraded_email(org: Organization) -> int:
    return email_owners(
        org,
        f"[{org.name}] Moved to the Free plan",
        f"The payment for {org.name} is still outstanding after the grace period, so the "
        "organization is now on the Free plan. Pay the open invoice from the billing page to "
        "return to your plan.",
    )
