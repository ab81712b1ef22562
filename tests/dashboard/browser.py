"""Playwright driving Debian's Chromium against the gateway served by uvicorn (ASGI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's screenshots; rewritten only when asked, so a test run leaves the tree clean.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
WIDTHS = {"1280": (1280, 860), "390": (390, 844)}

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"Browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium).",
)


def site_application():
    """The gateway's ASGI app, with static files served from the source folders by Django's
    own handler (no collectstatic in tests)."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from gateway_project.asgi import application

    return ASGIStaticFilesHandler(application)
