from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"

    def ready(self) -> None:
        from django.conf import settings

        from llm.providers import limits

        limits.set_max_upstream_bytes(settings.GATEWAY_MAX_UPSTREAM_BYTES)
