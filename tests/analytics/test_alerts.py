"""Each alert rule fires once per incident, says what, since when and what to do, and recovers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import time_machine
from django.core import mail

from analytics import alert_delivery, alerts
from analytics.models import Alert, AlertKind, AlertSettings, UsageRecord
from gateway_project.celery import app as celery_app
from tests.clock import next_month, next_month_start
from tests.factories import UserFactory

NOW = next_month(26, 12)

# What the provider-states source answers; tests change it between evaluations.
PROVIDER_STATES: dict[str, str] = {}


def read_provider_states() -> dict[str, str]:
    return dict(PROVIDER_STATES)


@pytest.fixture(autouse=True)
def alert_setup(settings, eager_celery, django_capture_on_commit_callbacks, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GATEWAY_ALERT_PROVIDER_STATES = "tests.analytics.test_alerts.read_provider_states"
    settings.GATEWAY_ALERT_EMAILS = ["oncall@gateway.test"]
    settings.GATEWAY_ALERT_WEBHOOK_URL = ""
    settings.GATEWAY_ALERT_WINDOW_MINUTES = 5
    settings.GATEWAY_ALERT_ERROR_RATE = 0.2
    settings.GATEWAY_ALERT_ERROR_RATE_MIN_REQUESTS = 10
    settings.GATEWAY_ALERT_RATE_LIMIT_SPIKE = 5
    PROVIDER_STATES.clear()
    posted: list[tuple[str, dict]] = []

    def receive(request: httpx.Request) -> httpx.Response:
        posted.append((str(request.url), json.loads(request.content)))
        return httpx.Response(204)

    monkeypatch.setattr(alert_delivery, "webhook_transport", httpx.MockTransport(receive))
    return posted


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks):
    """evaluate(at) -> runs every rule at that time, then the on-commit notifications."""

    def run(at: datetime):
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            return alerts.evaluate_alerts()

    return run


def add_usage(org, at, *, status=200, provider="openai", count=1, **fields):
    UsageRecord.objects.bulk_create(
        UsageRecord(
            organization=org,
            request_id=f"req-{at.timestamp()}-{status}-{provider}-{i}-{UsageRecord.objects.count()}",
            created_at=at,
            endpoint="chat.completions",
            requested_model="gpt-4o",
            provider=provider,
            status=status,
            **fields,
        )
        for i in range(count)
    )


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


@pytest.mark.django_db
def test_provider_down_fires_once_per_incident_and_recovers(evaluate, alert_setup):
    PROVIDER_STATES.update({"openai": "down", "anthropic": "up"})

    evaluate(NOW)
    evaluate(NOW + timedelta(minutes=1))
    evaluate(NOW + timedelta(minutes=2))

    alert = Alert.objects.get()
    assert alert.kind == AlertKind.PROVIDER_DOWN
    assert alert.is_open and alert.started_at == NOW
    assert alert.last_seen_at == NOW + timedelta(minutes=2)
    assert subjects() == ["[LLM Gateway] Provider openai is down"]
    body = mail.outbox[0].body
    assert f"Since {NOW:%Y-%m-%d %H:%M} UTC" in body
    assert "What to do:" in body
    assert mail.outbox[0].to == ["oncall@gateway.test"]

    PROVIDER_STATES["openai"] = "up"
    evaluate(NOW + timedelta(minutes=3))
    evaluate(NOW + timedelta(minutes=4))

    alert.refresh_from_db()
    assert alert.resolved_at == NOW + timedelta(minutes=3)
    assert alert.recovery_notified_at is not None
    assert subjects()[1:] == ["[LLM Gateway] Resolved: Provider openai is down"]

    PROVIDER_STATES["openai"] = "down"  # a new incident is a new alert
    evaluate(NOW + timedelta(minutes=10))
    assert Alert.objects.filter(key="provider_down:openai").count() == 2
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_staff_users_receive_gateway_wide_alerts(evaluate, owner):
    UserFactory(email="staff@gateway.test", is_staff=True)
    UserFactory(email="former@gateway.test", is_staff=True, is_active=False)
    PROVIDER_STATES["groq"] = "down"

    evaluate(NOW)

    assert mail.outbox[0].to == ["oncall@gateway.test", "staff@gateway.test"]  # not org owners


@pytest.mark.django_db
def test_error_rate_fires_above_the_threshold_and_recovers_when_the_window_passes(org, evaluate):
    add_usage(org, NOW - timedelta(minutes=2), status=200, count=7)
    add_usage(org, NOW - timedelta(minutes=1), status=502, count=3)  # 30 % of 10
    add_usage(org, NOW - timedelta(minutes=1), status=200, provider="mistral", count=10)

    evaluate(NOW)
    evaluate(NOW + timedelta(seconds=30))

    alert = Alert.objects.get(kind=AlertKind.ERROR_RATE)
    assert alert.key == "error_rate:openai"
    assert "3 of 10 requests" in alert.detail
    assert subjects() == ["[LLM Gateway] Error rate 30% on openai"]

    evaluate(NOW + timedelta(minutes=6))  # those failures left the window

    alert.refresh_from_db()
    assert not alert.is_open
    assert subjects()[-1] == "[LLM Gateway] Resolved: Error rate 30% on openai"


@pytest.mark.django_db
def test_error_rate_needs_enough_requests(org, evaluate):
    add_usage(org, NOW - timedelta(minutes=1), status=502, count=3)  # 100 % of only 3

    evaluate(NOW)

    assert not Alert.objects.filter(kind=AlertKind.ERROR_RATE).exists()


@pytest.mark.django_db
def test_rate_limit_spike_alerts_the_org_and_staff_but_not_other_orgs(
    org, owner, admin_user, member, other_org, outsider, evaluate
):
    add_usage(org, NOW - timedelta(minutes=1), status=429, count=6)
    add_usage(other_org, NOW - timedelta(minutes=1), status=429, count=2)

    evaluate(NOW)
    evaluate(NOW + timedelta(minutes=1))

    alert = Alert.objects.get(kind=AlertKind.RATE_LIMIT_SPIKE)
    assert alert.organization == org
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["admin@acme.test", "oncall@gateway.test", "owner@acme.test"]
    assert "Retry-After" in mail.outbox[0].body
    assert "Organisation: Acme" in mail.outbox[0].body

    evaluate(NOW + timedelta(minutes=7))
    alert.refresh_from_db()
    assert not alert.is_open


@pytest.mark.django_db
def test_configured_recipients_and_webhook_replace_the_default(org, owner, evaluate, alert_setup):
    AlertSettings.objects.create(
        organization=org,
        emails="ops@acme.test, cto@acme.test",
        webhook_url="https://hooks.acme.test/alerts",
    )
    add_usage(org, NOW - timedelta(minutes=1), status=429, count=5)

    evaluate(NOW)

    assert mail.outbox[0].to == ["cto@acme.test", "oncall@gateway.test", "ops@acme.test"]
    [(url, payload)] = alert_setup
    assert url == "https://hooks.acme.test/alerts"
    assert payload["event"] == "fired"
    assert payload["kind"] == "rate_limit_spike"
    assert payload["organization"] == "acme"
    assert payload["since"] == NOW.isoformat()
    assert payload["action"]


@pytest.mark.django_db
def test_the_generic_webhook_hears_fired_and_resolved(settings, evaluate, alert_setup):
    settings.GATEWAY_ALERT_WEBHOOK_URL = "https://hooks.ops.test/gateway"
    PROVIDER_STATES["cohere"] = "down"
    evaluate(NOW)
    PROVIDER_STATES["cohere"] = "up"
    evaluate(NOW + timedelta(minutes=1))

    events = [(url, payload["event"], payload["key"]) for url, payload in alert_setup]
    assert events == [
        ("https://hooks.ops.test/gateway", "fired", "provider_down:cohere"),
        ("https://hooks.ops.test/gateway", "resolved", "provider_down:cohere"),
    ]


@pytest.mark.django_db
def test_a_failing_webhook_is_retried_without_repeating_the_email(settings, evaluate, monkeypatch):
    settings.GATEWAY_ALERT_WEBHOOK_URL = "https://hooks.ops.test/gateway"
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200)

    monkeypatch.setattr(alert_delivery, "webhook_transport", httpx.MockTransport(flaky))
    # As on a worker: the retry is scheduled instead of raised to the caller.
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)
    PROVIDER_STATES["cohere"] = "down"

    evaluate(NOW)

    assert len(calls) == 3
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_plan_usage_alerts_at_80_and_100_percent_once_each(org, owner, evaluate):
    # The Free plan allows 50,000 tokens a month.
    add_usage(org, NOW - timedelta(days=1), input_tokens=30_000, output_tokens=10_000)
    evaluate(NOW)
    evaluate(NOW + timedelta(minutes=1))
    assert subjects() == ["[LLM Gateway] Plan tokens at 80% this month"]
    assert f"40000 of 50000 tokens used in {NOW:%Y-%m} (80%)" in mail.outbox[0].body
    assert mail.outbox[0].to == ["oncall@gateway.test", "owner@acme.test"]

    add_usage(org, NOW + timedelta(minutes=2), output_tokens=10_000)
    evaluate(NOW + timedelta(minutes=3))
    evaluate(NOW + timedelta(minutes=4))
    assert subjects()[1:] == ["[LLM Gateway] Plan tokens at 100% this month"]
    assert "upgrade the plan" in mail.outbox[1].body

    evaluate(next_month_start(NOW) + timedelta(minutes=5))  # a new month starts from zero
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
    assert len(mail.outbox) == 2  # usage resetting is not worth an e-mail


@pytest.mark.django_db
def test_payment_failed_alerts_once_until_a_payment_succeeds(
    org, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = alerts.report_payment_failed(org.id, "in_123", "49.00", "usd")
        again = alerts.report_payment_failed(org.id, "in_123", "49.00", "usd")

    assert first is not None and again is None
    assert subjects() == ["[LLM Gateway] Payment failed"]
    assert "49.00 USD for invoice in_123" in mail.outbox[0].body
    assert "Update the payment method" in mail.outbox[0].body

    with django_capture_on_commit_callbacks(execute=True):
        alerts.resolve_payment_failed(org.id)
    first.refresh_from_db()
    assert not first.is_open
    assert subjects()[-1] == "[LLM Gateway] Resolved: Payment failed"


@pytest.mark.django_db
def test_one_broken_rule_does_not_stop_the_others(settings, evaluate):
    settings.GATEWAY_ALERT_PLAN_USAGE = "tests.analytics.test_alerts.no_such_source"
    PROVIDER_STATES["openai"] = "down"

    outcome = evaluate(NOW)

    assert AlertKind.PLAN_USAGE not in outcome
    assert Alert.objects.filter(kind=AlertKind.PROVIDER_DOWN).count() == 1


@pytest.mark.django_db
def test_default_provider_states_come_from_recent_usage(org, evaluate):
    from analytics.alert_rules import provider_states_from_usage

    add_usage(org, NOW - timedelta(minutes=1), status=503, provider="xai", count=5)
    add_usage(org, NOW - timedelta(minutes=1), status=503, provider="groq", count=4)
    add_usage(org, NOW - timedelta(minutes=1), status=200, provider="groq", count=1)

    with time_machine.travel(NOW, tick=False):
        assert provider_states_from_usage() == {"xai": "down", "groq": "up"}


@pytest.mark.django_db
def test_staff_see_alert_history_in_admin(client, org):
    from accounts.models import User

    staff = User.objects.create_superuser(email="root@gateway.test", password="x" * 12)
    client.force_login(staff)
    Alert.objects.create(kind=AlertKind.PROVIDER_DOWN, key="provider_down:groq", title="Groq down")
    Alert.objects.create(
        kind=AlertKind.PAYMENT_FAILED,
        key=f"payment_failed:{org.id}",
        organization=org,
        title="Invoice in_9 unpaid",
        resolved_at=NOW,
    )

    response = client.get("/admin/analytics/alert/")
    assert response.status_code == 200
    assert b"Groq down" in response.content and b"Invoice in_9 unpaid" in response.content

    response = client.get("/admin/analytics/alert/?state=open")
    assert b"Groq down" in response.content and b"Invoice in_9 unpaid" not in response.content


@pytest.mark.django_db
def test_alert_history_is_not_for_non_staff(client, owner):
    client.force_login(owner)
    response = client.get("/admin/analytics/alert/")
    assert response.status_code == 302


def test_spend_limits_are_compared_exactly():
    from analytics.alert_rules import PlanUsage

    usage = PlanUsage(1, "spend", Decimal("8.00"), Decimal("10.00"))
    assert usage.used * 100 / usage.limit == Decimal(80)
