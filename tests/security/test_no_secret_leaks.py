"""Every key issued during a run of traffic (gateway keys, provider keys, login tokens) is absent
from every log line, every answer (errors included), the admin pages and the metrics."""

from __future__ import annotations

import io
import logging

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from analytics.logs import JsonFormatter, RequestIdFilter, redact_server_logs
from llm.api import auth
from organizations.api_keys import mint_api_key
from organizations.models import ApiKey
from tests.api.conftest import KEYS
from tests.api.loopback import Reply

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def captured_logs():
    """Every record of every logger, formatted the way production writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.access")]
    redact_server_logs()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def secrets_of(issued: list[str]) -> list[str]:
    """Each secret, and the part after the public prefix (enough to use a key)."""
    found = []
    for value in issued:
        found.append(value)
        if value.startswith("gw-"):
            found.append(value.split("_", 1)[1])
    return found


def test_no_key_is_written_anywhere(
    gateway, upstreams, org, owner, captured_logs, client, settings
):
    primary, backup = upstreams
    settings.METRICS_TOKEN = "metrics-token-0123456789abcdef"
    issued = [mint_api_key(org, name=f"k{n}", created_by=owner)[1] for n in range(3)]
    login_token = str(RefreshToken.for_user(owner).access_token)
    answers: list[str] = []

    def call(key, body=HELLO, path="/v1/chat/completions", **params):
        response = httpx.post(
            f"{gateway}{path}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        answers.append(response.text + str(dict(response.headers)))
        return response

    call(issued[0])  # a success
    call(issued[1], {**HELLO, "stream": True})
    call(issued[0], {"model": "gpt-4o-mini", "messages": "nope"})  # a 400
    call(issued[0][:-4] + "AAAA")  # a wrong key that differs by a few characters
    call(issued[2], api_key=issued[2])  # a key in the query string
    # Upstreams that echo our provider key back in their errors, then fail over.
    echo = {"error": {"message": f"Incorrect API key provided: {KEYS['OPENAI_API_KEY']}"}}
    echo_backup = {"error": {"message": f"Bad key {KEYS['GROQ_API_KEY']}"}}
    primary.then(Reply(status=401, body=echo))
    call(issued[1])
    primary.then(Reply(status=500, body=echo), Reply(status=500, body=echo))
    backup.then(Reply(status=500, body=echo_backup), Reply(status=500, body=echo_backup))
    call(issued[1])
    ApiKey.objects.filter(name="k2").update(is_revoked=True)
    auth.forget_cached_keys()
    call(issued[2])  # revoked

    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    pages = [
        client.get(url).content.decode()
        for url in (
            "/admin/organizations/apikey/",
            *(f"/admin/organizations/apikey/{k.pk}/change/" for k in ApiKey.objects.all()),
            "/admin/accounts/user/",
            "/admin/analytics/usagerecord/",
        )
    ]
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert metrics.status_code == 200
    pages.append(metrics.content.decode())

    written = captured_logs.getvalue()
    assert "chat.completions" in written  # the request log was captured
    everything = {"logs": written, "answers": "\n".join(answers), "pages": "\n".join(pages)}
    for secret in secrets_of([*issued, login_token, *KEYS.values()]):
        for where, text in everything.items():
            at = text.find(secret)
            assert at < 0, f"a secret appears in the {where}: {text[max(at - 300, 0) : at + 50]}"
