"""Seed a demo organisation, user and API key, and print how to use them (used by `make run`).

The demo key survives restarts: its secret is kept in a local file (`.demo-key`, ignored by
git, readable by its owner only) because the database keeps only a hash of it. Nothing is
revoked; if the file is gone or its key no longer works, a new key is minted and saved.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from billing.limits import PlanLimits, limits_for_plan
from billing.stripe_api import is_stripe_configured
from organizations.api_keys import find_api_key, mint_api_key
from organizations.memberships import create_organization
from organizations.models import Membership, Organization

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-123"
DEMO_KEY_NAME = "demo key"


def default_key_file() -> Path:
    return Path(settings.BASE_DIR) / ".demo-key"


class Command(BaseCommand):
    help = "Create (once) a demo organisation, owner and API key; print how to use them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--key-file", type=Path, default=None, help="default: .demo-key")

    @transaction.atomic
    def handle(self, *args, key_file: Path | None = None, **options) -> None:
        key_file = key_file or default_key_file()
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(
                DEMO_EMAIL, DEMO_PASSWORD, is_staff=True, is_superuser=True
            )
            create_organization(name="Demo Organization", owner=user)
        org = Membership.objects.filter(user=user).first().organization
        secret, kept = ensure_demo_key(org, user, key_file)
        limits = limits_for_plan(org.plan)
        self.stdout.write(
            "\nDemo organisation ready.\n"
            f"  dashboard login : {DEMO_EMAIL} / {DEMO_PASSWORD}  (http://127.0.0.1:8000/dashboard/)\n"
            f"  organization    : {org.name} ({org.slug})\n"
            f"  API key         : {secret}\n"
            f"                    ({'kept from' if kept else 'new, saved in'} {key_file})\n"
            f"  plan            : {describe_limits(limits)}\n"
            f"                    {plan_note()}\n"
            "  try it          : curl http://127.0.0.1:8000/v1/models "
            f"-H 'Authorization: Bearer {secret}'\n"
            "  API docs        : http://127.0.0.1:8000/api/docs/\n"
        )


def ensure_demo_key(org: Organization, user: User, key_file: Path) -> tuple[str, bool]:
    """(secret, kept): the saved demo key if it still works for this organisation, else a new
    one, saved for the next start."""
    if key_file.exists():
        secret = key_file.read_text().strip()
        key = find_api_key(secret)
        if key is not None and key.organization_id == org.pk:
            return secret, True
    _, secret = mint_api_key(org, name=DEMO_KEY_NAME, created_by=user)
    key_file.write_text(secret + "\n")
    os.chmod(key_file, 0o600)
    return secret, False


def describe_limits(limits: PlanLimits) -> str:
    def amount(value: int | None, what: str) -> str | None:
        return None if value is None else f"{value:,} {what}"

    rates = [
        amount(limits.requests_per_minute, "requests/minute"),
        amount(limits.requests_per_hour, "requests/hour"),
        amount(limits.requests_per_day, "requests/day"),
        amount(limits.tokens_per_minute, "tokens/minute"),
        amount(limits.monthly_requests, "requests/month"),
        amount(limits.monthly_tokens, "tokens/month"),
    ]
    shown = ", ".join(r for r in rates if r) or "no limits"
    return f"{limits.plan_name} ({shown})"


def plan_note() -> str:
    if is_stripe_configured():
        return "change it by subscribing on the billing page (/billing/)"
    return "Stripe is not configured, so this is the plan; staff can change it in the admin"
