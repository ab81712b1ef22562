from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"

    def ready(self) -> None:
        from django.conf import settings

        from llm import redis_clients
        from llm.providers import wire

        wire.set_max_upstream_bytes(settings.GATEWAY_MAX_UPSTREAM_BYTES)
        redis_clients.configure(settings.REDIS_URL, settings.GATEWAY_REDIS_TIMEOUT_SECONDS)
