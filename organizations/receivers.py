"""Reactions to django-allauth's signals. Each receiver is one call to a named function."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.dispatch import receiver


@receiver(user_logged_in)
def remember_organization_on_login(sender, request, user, **kwargs) -> None:
    from organizations.tenancy import ensure_current_organization

    ensure_current_organization(user)
