"""Celery tasks of the accounts app."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command


@shared_task
def flush_expired_tokens() -> None:
    """Forget refresh tokens past their expiry (and their blacklist entries): they can no longer
    be used, so the revocation lists need not keep them. simplejwt's own command does it."""
    call_command("flushexpiredtokens")
