from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from analytics.models import Alert, AlertSettings, DeadLetterUsage, UsageRecord
from analytics.usage_writer import retry_dead_letters


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


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alert history for staff. Read-only, except closing an alert by hand."""

    list_display = ["started_at", "title", "kind", "organization", "is_open", "resolved_at"]
    list_filter = [OpenFilter, "kind"]
    search_fields = ["title", "key", "organization__name"]
    list_select_related = ["organization"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ["resolve_selected"]

    @admin.display(boolean=True, description="open")
    def is_open(self, obj: Alert) -> bool:
        return obj.is_open

    @admin.action(description="Resolve selected alerts (no notification)")
    def resolve_selected(self, request, queryset):
        queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "emails", "webhook_url", "updated_at"]
    search_fields = ["organization__name", "emails"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]


@admin.register(DeadLetterUsage)
class DeadLetterUsageAdmin(admin.ModelAdmin):
    """Usage records the database refused. Fix the cause, then retry them from here."""

    list_display = ["received_at", "request_id", "organization_id", "error", "written_at"]
    list_filter = [("written_at", admin.EmptyFieldListFilter)]
    search_fields = ["request_id", "error"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in DeadLetterUsage._meta.fields]
    actions = ["retry_selected"]

    @admin.action(description="Retry writing the selected records")
    def retry_selected(self, request, queryset):
        written, failed = retry_dead_letters(queryset.filter(written_at__isnull=True))
        self.message_user(request, f"{written} written, {failed} still refused.")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
