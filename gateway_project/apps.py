from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """Listed last in INSTALLED_APPS: every other app is ready when the process is set up."""

    name = "gateway_project"

    def ready(self) -> None:
        from gateway_project.startup import set_up_process

        set_up_process()
