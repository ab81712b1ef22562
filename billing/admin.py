from __future__ import annotations

from django.contrib import admin

from billing.models import BillingAccount, Invoice, Plan, ProcessedEvent


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "price_per_month",
        "monthly_requests",
        "monthly_tokens",
        "overage",
        "stripe_price_id",
        "is_public",
    ]
    list_editable = ["stripe_price_id", "is_public"]


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ["organization", "status", "stripe_customer_id", "grace_ends_at"]
    list_filter = ["status"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "stripe_customer_id", "stripe_subscription_id"]
    raw_id_fields = ["organization"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ["stripe_event_id", "type", "processed_at"]
    search_fields = ["stripe_event_id"]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["stripe_id", "organization", "status", "amount_due", "currency", "created"]
    list_filter = ["status"]
    list_select_related = ["organization"]
    search_fields = ["stripe_id", "number", "organization__name"]
    raw_id_fields = ["organization"]
