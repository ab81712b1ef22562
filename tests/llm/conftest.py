"""The llm core's tests run without Django (``-p no:django``)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # The project's pytest config carries pytest-django's --nomigrations and
    # DJANGO_SETTINGS_MODULE; accept both when that plugin is switched off, and step aside when
    # it is loaded and already owns them.
    try:
        parser.addoption("--nomigrations", action="store_true", help="(pytest-django)")
    except ValueError:
        return
    parser.addini("DJANGO_SETTINGS_MODULE", "(pytest-django)")
