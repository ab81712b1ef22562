"""Celery tasks of billing: ids in, each safe to run twice (see the modules they call). Retries
and time limits: TASK_OPTIONS in gateway_project/celery.py."""

from __future__ import annotations

import logging

from celery import shared_task

from billing import invoices, metering, subscriptions, sweeper, webhooks
from billing.accounts import PAYING
from billing.models import BillingAccount
from organizations.tenancy import get_organization_for_task

logger = logging.getLogger(__name__)


@shared_task
def report_metered_usage(org_id: int) -> int:
    return metering.report_overage(get_organization_for_task(org_id))


@shared_task
def report_all_metered_usage() -> int:
    org_ids = BillingAccount.objects.filter(status__in=PAYING).exclude(stripe_customer_id="")
    for org_id in org_ids.values_list("organization_id", flat=True):
        report_metered_usage.delay(org_id)
    return len(org_ids)


@shared_task
def sync_org_invoices(org_id: int) -> int:
    return invoices.sync_invoices(get_organization_for_task(org_id))


@shared_task
def sync_all_invoices() -> int:
    accounts = BillingAccount.objects.exclude(stripe_customer_id="")
    org_ids = list(accounts.values_list("organization_id", flat=True))
    for org_id in org_ids:
        sync_org_invoices.delay(org_id)
    return len(org_ids)


@shared_task
def downgrade_overdue_accounts() -> int:
    return subscriptions.downgrade_overdue_accounts()


@shared_task
def retry_failed_webhooks() -> int:
    return webhooks.retry_failed_webhooks()


@shared_task
def sweep_interrupted_requests() -> int:
    """Requests of gateway processes that died become usage rows (beat: every 30 s)."""
    return sweeper.sweep_interrupted_requests()
