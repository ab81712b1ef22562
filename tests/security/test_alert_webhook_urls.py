"""An organisation's alert webhook URL can reach only the public internet: checked on save and
at connect time, in every spelling of a private address; no redirects; no platform secret sent."""

from __future__ import annotations

import json
import socket

import httpcore
import httpx
import pytest
from django.core.exceptions import ValidationError

from analytics import alert_delivery, webhook_urls
from analytics.models import AlertSettings

pytestmark = pytest.mark.django_db

UNSAFE = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",  # decimal
    "http://0x7f000001/hook",  # hex
    "http://0177.0.0.1/hook",  # octal
    "http://0x7f.1/hook",
    "http://0/hook",
    "http://0.0.0.0/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped, hex: 169.254.169.254
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata address
    "http://[fe80::1]/hook",
    "http://localhost:8000/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/hook",
    "http://127.0.0.1./hook",
    "http://user:pass@hooks.example.com/hook",
    "ftp://hooks.example.com/hook",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_an_unsafe_url_is_refused_on_save(org, url):
    settings_row = AlertSettings(organization=org, webhook_url=url)
    with pytest.raises(ValidationError):
        settings_row.full_clean()


def test_a_public_url_is_accepted_on_save(org):
    AlertSettings(organization=org, webhook_url="https://hooks.example.com/alerts").full_clean()


def test_a_name_resolving_to_a_private_address_is_refused_on_save(org, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.1.2.3", 443))])
    with pytest.raises(ValidationError):
        AlertSettings(organization=org, webhook_url="https://rebind.example.com/").full_clean()


@pytest.mark.parametrize("url", UNSAFE[:20])
def test_an_unsafe_url_saved_before_the_check_is_refused_at_connect_time(url):
    with pytest.raises(webhook_urls.UnsafeWebhookUrl):
        alert_delivery.post_alert_webhook(url, {"event": "fired"})


def test_connect_time_dials_only_the_checked_public_address(monkeypatch):
    """DNS rebinding: the name resolves to a private address when we connect: refused there."""
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("169.254.169.254", 80))]
    )
    with pytest.raises(httpx.ConnectError, match="private or reserved"):
        alert_delivery.post_alert_webhook("http://hooks.example.com/x", {"event": "fired"})


def test_the_backend_connects_to_the_resolved_public_address(monkeypatch):
    dialled = []
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.215.14", 80))]
    )
    monkeypatch.setattr(
        httpcore.SyncBackend,
        "connect_tcp",
        lambda self, host, port, *a, **k: (
            dialled.append((host, port))
            or (_ for _ in ()).throw(httpcore.ConnectError("test stops here"))
        ),
    )
    with pytest.raises(httpx.ConnectError):
        alert_delivery.post_alert_webhook("http://hooks.example.com/x", {"event": "fired"})
    assert dialled == [("93.184.215.14", 80)]


def test_redirects_are_not_followed_and_no_secret_is_sent(monkeypatch, settings):
    settings.METRICS_TOKEN = "metrics-token-secret-123456"
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/"})

    monkeypatch.setattr(alert_delivery, "webhook_transport", httpx.MockTransport(answer))
    with pytest.raises(httpx.HTTPStatusError):
        alert_delivery.post_alert_webhook("https://hooks.example.com/a", {"event": "fired"})
    [request] = seen  # the redirect was not followed
    sent = json.dumps(dict(request.headers)) + request.content.decode()
    for secret in (settings.SECRET_KEY, settings.METRICS_TOKEN, "sk-", "Bearer"):
        assert secret not in sent
    assert "authorization" not in request.headers and "cookie" not in request.headers


def test_the_operators_own_webhook_may_be_internal(monkeypatch, settings):
    settings.GATEWAY_ALERT_WEBHOOK_URL = "http://alertmanager:9093/hook"
    seen = []
    monkeypatch.setattr(
        alert_delivery,
        "webhook_transport",
        httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200)),
    )
    alert_delivery.post_alert_webhook(settings.GATEWAY_ALERT_WEBHOOK_URL, {"event": "fired"})
    assert len(seen) == 1
