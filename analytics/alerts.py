"""Alert incidents: open once, notify once, resolve when the condition ends.

- `evaluate_alerts(now)`: runs every rule in analytics/alert_rules.py (Celery beat, every minute).
- `fire_alert(condition)` / `resolve_alert(key)`: for events other apps report, e.g. billing on a
  failed payment (`report_payment_failed`) and on the payment that follows it.

Deduplication is a database constraint: at most one open alert per key. A condition that is still
true on the next run only updates `last_seen_at`; notifications go out after commit, once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics import metrics
from analytics.alert_delivery import FIRED, RESOLVED, send_alert_notifications
from analytics.alert_rules import RULES, Condition
from analytics.models import Alert, AlertKind

logger = logging.getLogger(__name__)


def _queue_notifications(alert_id: int, event: str) -> None:
    try:
        send_alert_notifications.delay(alert_id, event)
    except Exception:  # broker down, or a delivery error when tasks run eagerly
        logger.exception("alert %s: notifications not sent", alert_id)


def _notify_after_commit(alert_id: int, event: str) -> None:
    transaction.on_commit(lambda: _queue_notifications(alert_id, event))


def fire_alert(condition: Condition, now: datetime | None = None) -> Alert | None:
    """Open an alert for `condition` unless one with its key is open; returns the new alert, or
    None when it was already open (then only `last_seen_at` moves)."""
    now = now or timezone.now()
    if Alert.objects.filter(key=condition.key, resolved_at__isnull=True).update(last_seen_at=now):
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=condition.kind,
                key=condition.key,
                organization_id=condition.organization_id,
                title=condition.title,
                detail=condition.detail,
                action=condition.action,
                context=condition.context,
                started_at=now,
                last_seen_at=now,
            )
    except IntegrityError:  # opened concurrently by another run: that one notifies
        return None
    metrics.record_alert_fired(condition.kind)
    logger.warning("alert fired: %s", condition.title, extra={"alert_key": condition.key})
    _notify_after_commit(alert.id, FIRED)
    return alert


def resolve_alert(key: str, now: datetime | None = None, notify: bool = True) -> Alert | None:
    """Close the open alert with `key`, if any, and tell its recipients it recovered."""
    alert = Alert.objects.filter(key=key, resolved_at__isnull=True).first()
    if alert is None:
        return None
    alert.resolved_at = now or timezone.now()
    alert.save(update_fields=["resolved_at"])
    logger.info("alert resolved: %s", alert.title, extra={"alert_key": key})
    if notify:
        _notify_after_commit(alert.id, RESOLVED)
    return alert


def evaluate_rule(kind: str, now: datetime) -> tuple[int, int]:
    """Run one rule; returns (alerts opened, alerts resolved)."""
    rule, notify_recovery = RULES[kind]
    firing = {condition.key: condition for condition in rule(now)}
    opened = sum(fire_alert(condition, now) is not None for condition in firing.values())
    stale = Alert.objects.filter(kind=kind, resolved_at__isnull=True).exclude(key__in=firing)
    resolved = 0
    for key in stale.values_list("key", flat=True):
        resolved += resolve_alert(key, now, notify=notify_recovery) is not None
    return opened, resolved


def evaluate_alerts(now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """Run every rule. One broken rule (say its data source is down) does not stop the others."""
    now = now or timezone.now()
    outcome = {}
    for kind in RULES:
        try:
            outcome[kind] = evaluate_rule(kind, now)
        except Exception:
            logger.exception("alert rule %s failed", kind)
    return outcome


def report_payment_failed(
    organization_id: int, invoice_id: str, amount: str, currency: str
) -> Alert | None:
    """Billing calls this when a payment fails; `resolve_payment_failed` when one succeeds."""
    return fire_alert(
        Condition(
            kind=AlertKind.PAYMENT_FAILED,
            key=f"payment_failed:{organization_id}",
            title="Payment failed",
            detail=f"The payment of {amount} {currency.upper()} for invoice {invoice_id} failed.",
            action=(
                "Update the payment method under Billing. Stripe retries the charge; the "
                "subscription is cancelled if every retry fails."
            ),
            organization_id=organization_id,
            context={"invoice_id": invoice_id, "amount": amount, "currency": currency},
        )
    )


def resolve_payment_failed(organization_id: int) -> Alert | None:
    return resolve_alert(f"payment_failed:{organization_id}")
