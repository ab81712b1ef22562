"""Create the first admin from DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD, once.

The compose stack runs it as a one-shot service after the migrations. Safe to run on every
start: with no variables set, or once the user exists, it says so and changes nothing. The
admin also gets an organisation (GATEWAY_ADMIN_ORGANIZATION), so the dashboard and the API
work for them at once.
"""

from __future__ import annotations

import os

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from organizations.memberships import create_organization


class Command(BaseCommand):
    help = "Create the first staff superuser (and an organisation) from DJANGO_SUPERUSER_*."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip().lower()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not email:
            self.stdout.write("DJANGO_SUPERUSER_EMAIL is not set: no admin created.")
            return
        if User.objects.filter(email__iexact=email).exists():
            self.stdout.write(f"The admin {email} exists already: nothing to do.")
            return
        if not password:
            raise CommandError("Set DJANGO_SUPERUSER_PASSWORD to create the admin.")
        try:
            password_validation.validate_password(password, User(email=email))
        except ValidationError as error:
            raise CommandError("DJANGO_SUPERUSER_PASSWORD: " + " ".join(error.messages)) from None
        user = User.objects.create_superuser(email, password)
        name = os.environ.get("GATEWAY_ADMIN_ORGANIZATION") or "My Organization"
        org = create_organization(name=name, owner=user)
        self.stdout.write(f"Created the admin {email}, owner of {org.name} ({org.slug}).")
