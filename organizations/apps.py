from __future__ import annotations

from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"

    def ready(self) -> None:
        from organizations import receivers  # noqa: F401  (connects allauth's signals)
