"""Seed a demo organisation, user and API key, and print them (used by `make run`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from organizations.api_keys import mint_api_key
from organizations.memberships import create_organization
from organizations.models import ApiKey, Membership

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-123"


class Command(BaseCommand):
    help = "Create (once) a demo organisation, owner and API key; print how to use them."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(
                DEMO_EMAIL, DEMO_PASSWORD, is_staff=True, is_superuser=True
            )
            create_organization(name="Demo Organization", owner=user)
        org = Membership.objects.filter(user=user).first().organization
        # A new key each time: the old secret cannot be shown again, so revoke and re-mint.
        ApiKey.objects.for_org(org).filter(name="demo key", is_revoked=False).update(
            is_revoked=True
        )
        _, secret = mint_api_key(org, name="demo key", created_by=user)
        self.stdout.write(
            "\nDemo organisation ready.\n"
            f"  dashboard login : {DEMO_EMAIL} / {DEMO_PASSWORD}  (http://127.0.0.1:8000/dashboard/)\n"
            f"  organization    : {org.name} ({org.slug})\n"
            f"  API key         : {secret}\n"
            "  try it          : curl http://127.0.0.1:8000/v1/models "
            f"-H 'Authorization: Bearer {secret}'\n"
        )
