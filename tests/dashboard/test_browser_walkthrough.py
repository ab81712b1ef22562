"""The dashboard in a real browser: a new user signs up, gets a key, calls the API, sees the call,
invites a member, changes plan through Checkout, uses the playground and revokes the key.

Screenshots of every page at 1280 and 390 px are taken (and checked not to overflow at 390 px);
with UPDATE_SCREENSHOTS=1 they replace docs/screenshots/, shown in the README.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from analytics.models import UsageRecord
from analytics.recording import flush_pending_usage
from organizations.models import Organization
from tests.api.conftest import (  # noqa: F401 (fixtures)
    _close_shared_client,
    gateway,
    gateway_server,
    upstream_servers,
    upstreams,
)
from tests.api.loopback import ServerThread
from tests.billing.conftest import WEBHOOK_SECRET, fake_stripe  # noqa: F401 (fixture)
from tests.billing.fake_stripe import make_event, sign_payload
from tests.dashboard.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    UPDATE_SCREENSHOTS,
    WIDTHS,
    needs_chromium,
    site_application,
)

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]
PASSWORD = "a long passphrase 42"


@pytest.fixture(scope="module")
def site_server():
    server = ServerThread(site_application()).start()
    yield server
    server.stop()


@pytest.fixture
def site(site_server, gateway, fake_stripe, settings, monkeypatch):  # noqa: F811
    """The gateway's URL, with key lookups uncached so a revocation shows at once."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM beside Playwright's loop
    settings.GATEWAY_API_KEY_CACHE_SECONDS = 0
    settings.GATEWAY_BILLING_RETURN_URL = f"{site_server.url}/billing/"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    yield site_server.url
    site_server.call(_close_shared_client())  # the upstream client lives in this server's loop


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visitor:
    """One person's browser: a desktop tab, and a phone-width tab sharing its session."""

    def __init__(self, browser, base: str, screenshots: Path):
        self.base = base
        self.screenshots = screenshots
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        self.page = self.context.new_page()
        self.phone = self.context.new_page()
        self.phone.set_viewport_size({"width": WIDTHS["390"][0], "height": WIDTHS["390"][1]})

    def go(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def shoot(self, name: str, path: str | None = None) -> None:
        """Screenshot the desktop tab as it is, and `path` (default: the same URL) on the phone;
        check every control has a label and the page fits 390 px."""
        unlabelled = self.page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)"
        )
        assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
        self.page.screenshot(path=self.screenshots / f"{name}-1280.png")
        self.phone.goto(self.base + path if path else self.page.url)
        self.phone.wait_for_load_state("networkidle")
        self.phone.screenshot(path=self.screenshots / f"{name}-390.png")
        wide = self.phone.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => !e.closest('.table-wrap, pre')"
            " && e.getBoundingClientRect().right > innerWidth + 1).map(e => e.tagName)"
        )
        assert self._fits(self.phone), f"{name} overflows at 390 px: {wide}"

    @staticmethod
    def _fits(page) -> bool:
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def sign_up(visitor: Visitor, email: str, organization: str = "") -> None:
    page = visitor.go("/accounts/signup/")
    page.get_by_label("Email:").fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):").fill(PASSWORD)
    if organization:
        page.get_by_label("Organization name:").fill(organization)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def org_slug(page, name: str) -> str:
    return page.locator("#org-switch option", has_text=name).get_attribute("value")


def wait_for_usage_records(count: int) -> None:
    """Settling runs beside the response: write buffered records until `count` exist."""
    deadline = time.monotonic() + 10
    while UsageRecord.objects.count() < count:
        assert time.monotonic() < deadline, "the usage record was never written"
        flush_pending_usage()
        time.sleep(0.05)


def call_api(base: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=10,
    )


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """docs/screenshots/ with UPDATE_SCREENSHOTS=1, else a temporary folder."""
    return SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path


def test_a_new_user_walks_through_the_dashboard(site, browser, fake_stripe, screenshots):  # noqa: F811
    # 1. Sign up (the sign-up and login pages first, as a visitor sees them).
    anonymous = Visitor(browser, site, screenshots)
    page = anonymous.go("/accounts/login/")
    page.keyboard.press("Tab")  # the first stop is the skip link, then the page
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    anonymous.shoot("login")
    anonymous.go("/accounts/signup/")
    anonymous.shoot("signup")

    owner = Visitor(browser, site, screenshots)
    sign_up(owner, "ada@example.test", "Analytical Engines")
    page = owner.page
    assert page.get_by_role("heading", name="Make your first request").is_visible()
    assert f"{site}/v1/chat/completions" in page.locator("#snippet-curl").inner_text()
    owner.shoot("overview-empty")

    # 2. Create a key and copy it.
    page = owner.go("/dashboard/keys/")
    page.get_by_label("Name").fill("production")
    page.get_by_text("Per-key limits").click()
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").input_value()
    assert secret.startswith("gw-")
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    owner.shoot("keys", "/dashboard/keys/")
    page = owner.go("/dashboard/keys/")
    assert secret not in page.content()  # shown once

    # 3. Call the API with it, against the fake upstream.
    response = call_api(site, secret)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the upstream."
    wait_for_usage_records(1)

    # 4. See the call on the Overview and the Requests pages.
    page = owner.go("/dashboard/")
    stats = page.locator("#overview-stats")
    assert re.search(r"Requests\s*1\b", stats.inner_text())
    page.locator("#plan-usage .meter-row").first.wait_for()  # htmx loaded the plan usage
    owner.shoot("overview")
    page = owner.go("/dashboard/requests/")
    row = page.locator("#request-log tbody tr").first
    assert "gpt-4o-mini" in row.inner_text() and "200" in row.inner_text()
    owner.shoot("requests")
    row.get_by_role("link").click()
    assert page.get_by_role("heading", name="Route").is_visible()
    assert "openai" in page.locator("main").inner_text()
    owner.shoot("request-detail")
    owner.go("/dashboard/analytics/")
    assert "gpt-4o-mini" in owner.page.locator("#cost-by-model").inner_text()
    owner.shoot("analytics")

    # 5. Invite a member, who signs up and accepts.
    page = owner.go("/dashboard/team/")
    page.get_by_label("E-mail address").fill("grace@example.test")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    link = re.search(r"https?://\S+/invitations/\S+/", page.locator(".messages").inner_text())
    assert "grace@example.test" in page.locator("#invitations").inner_text()
    member = Visitor(browser, site, screenshots)
    sign_up(member, "grace@example.test")
    member.page.goto(link.group(0).replace("http://testserver", site))
    member.page.get_by_role("button", name="Accept invitation").click()
    switcher = member.page.get_by_label("Organization")  # now in two organisations
    assert switcher.input_value() == org_slug(member.page, "Analytical Engines")
    switcher.select_option(label="grace's team")
    member.page.get_by_role("button", name="Switch").click()
    assert member.page.get_by_label("Organization").input_value() == org_slug(
        member.page, "grace's team"
    )
    page = owner.go("/dashboard/team/")
    assert "grace@example.test" in page.locator("#members").inner_text()
    assert not page.locator("#invitations").count()
    owner.shoot("team")

    # 6. Change plan through (a fake of) Stripe Checkout.
    page = owner.go("/billing/")
    checkout = {}

    def fake_checkout(route):
        # Playwright does not route redirects: follow ours to Stripe by hand, to a fake page.
        answer = route.fetch(max_redirects=0)
        checkout["url"] = answer.headers["location"]
        route.fulfill(content_type="text/html", body="<h1>Stripe Checkout (test)</h1>")

    page.route("**/billing/subscribe/", fake_checkout)
    page.get_by_role("button", name="Subscribe to Starter").click()
    page.get_by_role("heading", name="Stripe Checkout (test)").wait_for()
    session = next(iter(fake_stripe.checkout_sessions.values()))
    assert checkout["url"] == session["url"]
    org = Organization.objects.get(name="Analytical Engines")
    subscription = fake_stripe.add_subscription(session["customer"], "price_starter")
    completed = {
        "id": session["id"],
        "customer": session["customer"],
        "subscription": subscription["id"],
        "client_reference_id": str(org.pk),
    }
    payload = json.dumps(make_event("checkout.session.completed", completed))
    webhook = httpx.post(
        f"{site}/api/billing/webhook",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET)},
    )
    assert webhook.status_code == 200, webhook.text
    page.goto(session["success_url"])
    assert "Analytical Engines: Starter plan" in page.locator("#current-plan").inner_text()
    owner.shoot("billing")

    # 7. Use the playground.
    page = owner.go("/dashboard/playground/")
    page.get_by_label("Model or alias").select_option("gpt-4o-mini")
    page.get_by_role("textbox", name="Prompt").fill("Say hello")
    page.get_by_role("button", name="Send").click()
    page.locator("#answer[data-done]").wait_for()
    assert page.locator("#answer").inner_text() == "Hello from the upstream."
    assert "openai" in page.locator("[data-fact=provider]").inner_text()
    assert page.locator("[data-fact=cost]").inner_text().startswith("$")
    owner.shoot("playground", "/dashboard/playground/")

    owner.go("/dashboard/models/")
    assert "gpt-4o-mini" in owner.page.locator("#model-list").inner_text()
    owner.shoot("models")
    owner.go("/dashboard/settings/")
    owner.page.locator("#alert-settings form").wait_for()  # htmx loaded the alerts section
    owner.shoot("settings")

    # 8. Revoke the key; the API refuses it.
    page = owner.go("/dashboard/keys/")
    page.get_by_role("link", name="Revoke production").click()
    page.get_by_role("button", name="Revoke key").click()
    assert "revoked" in page.locator("#key-list").inner_text()
    refused = call_api(site, secret)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
