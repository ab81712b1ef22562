"""The playground streams through the API's own pipeline and is billed like an API call."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from analytics.models import UsageRecord
from analytics.recording import flush_pending_usage
from tests.api.conftest import (  # noqa: F401 (fixtures)
    gateway,
    gateway_server,
    upstream_servers,
    upstreams,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(client, settings, plans):
    """session(user) -> an httpx client signed in as that user on the live gateway, with the
    page's CSRF token."""
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False

    def sign_in(user, base: str) -> httpx.Client:
        client.force_login(user)
        browser = httpx.Client(base_url=base, timeout=10)
        browser.cookies.set("sessionid", client.cookies["sessionid"].value)
        page = browser.get("/dashboard/playground/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        browser.headers["X-CSRFToken"] = token
        return browser

    return sign_in


def test_the_answer_streams_and_is_recorded_on_the_playground_key(gateway, session, owner, org):  # noqa: F811
    browser = session(owner, gateway)
    data = {"model": "gpt-4o-mini", "prompt": "Say hello", "max_tokens": "50"}
    with browser.stream("POST", "/dashboard/playground/send/", data=data) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Gateway-Provider"] == "openai"
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from the upstream."
    usage = chunks[-1]["usage"]
    deadline = time.monotonic() + 10
    while not UsageRecord.objects.filter(endpoint="playground").exists():
        assert time.monotonic() < deadline
        flush_pending_usage()
        time.sleep(0.05)
    row = UsageRecord.objects.get(endpoint="playground")
    assert row.organization == org and row.api_key.name == "Playground"
    assert row.api_key.created_by == owner and row.stream
    assert row.input_tokens == usage["prompt_tokens"] and str(row.cost) == usage["cost"]
    assert row.cost > 0


def test_a_model_outside_the_catalogue_is_a_400_naming_the_field(gateway, session, owner):  # noqa: F811
    response = session(owner, gateway).post(
        "/dashboard/playground/send/", data={"model": "gpt-9", "prompt": "hi"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"
    assert not UsageRecord.objects.exists()


def test_the_models_page_lists_prices_context_and_health(gateway, session, owner):  # noqa: F811
    html = session(owner, gateway).get("/dashboard/models/").text
    table = html[html.index('id="model-list"') :]
    assert "gpt-4o-mini" in table and "$0.15" in table and "$0.60" in table
    assert "128,000" in table and "healthy" in table
    assert "llama-3.1-8b → gpt-4o-mini" in html  # the alias "small"


def test_the_playground_needs_the_pages_csrf_token(gateway, session, owner):  # noqa: F811
    browser = session(owner, gateway)
    del browser.headers["X-CSRFToken"]
    response = browser.post(
        "/dashboard/playground/send/", data={"model": "gpt-4o-mini", "prompt": "hi"}
    )
    assert response.status_code == 403
    assert not UsageRecord.objects.exists()
