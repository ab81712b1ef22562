"""/api/docs/ works offline: in a real browser that may reach nothing but the gateway, Swagger UI
renders the public API's operations (and ReDoc renders too)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def offline_page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    blocked: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page()

        def only_the_gateway(route):
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_gateway)
        yield page, live_server.url, blocked
        browser.close()


def test_swagger_ui_renders_the_public_api_offline(offline_page):
    page, base, blocked = offline_page
    page.goto(f"{base}/api/docs/")
    page.get_by_text("/v1/chat/completions", exact=True).wait_for(timeout=15000)
    assert page.get_by_text("/api/v1/generate-structured", exact=True).is_visible()
    assert page.get_by_text("/api/auth/refresh", exact=True).is_visible()
    assert blocked == []


def test_redoc_renders_offline(offline_page):
    page, base, blocked = offline_page
    page.goto(f"{base}/api/redoc/")
    page.locator("h2", has_text="Create a chat completion").wait_for(timeout=15000)
    assert blocked == []
