from __future__ import annotations

from django.contrib import admin

from analytics.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "organization",
        "endpoint",
        "requested_model",
        "provider",
        "status",
        "input_tokens",
        "output_tokens",
        "cost",
        "latency_ms",
        "cache_hit",
    ]
    list_filter = ["provider", "endpoint", "status", "cache_hit"]
    search_fields = ["request_id", "organization__name", "requested_model"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # usage records are append-only
