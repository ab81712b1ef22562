"""manage.py reconcile_usage --since 2026-12-01: does the ledger add up? Drift first."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from billing.reconciliation import format_reconciliation, reconcile_usage


def parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--since: not an ISO date or time: {value!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Compare requests, usage rows, hourly and daily roll-ups and Stripe meter reports."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="ISO date or time (UTC if no offset)")

    def handle(self, *args, since: str, **options):
        result = reconcile_usage(parse_instant(since))
        for line in format_reconciliation(result):
            self.stdout.write(line)
        if result.drift:
            raise CommandError(f"{len(result.drift)} kinds of drift found")
