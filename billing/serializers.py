from __future__ import annotations

from rest_framework import serializers

from billing.models import Plan


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "slug",
            "name",
            "price_per_month",
            "monthly_requests",
            "monthly_tokens",
            "monthly_budget_usd",
            "requests_per_minute",
            "requests_per_hour",
            "requests_per_day",
            "tokens_per_minute",
            "allowed_models",
            "overage",
            "overage_price_per_1k_tokens",
        ]


class SubscribeSerializer(serializers.Serializer):
    plan = serializers.SlugField()


class InvoiceSerializer(serializers.Serializer):
    """Shape of billing.invoices.describe_invoice; amounts are exact decimal strings."""

    id = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField()
    amount = serializers.CharField()
    amount_paid = serializers.CharField()
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField()
    pdf_url = serializers.CharField()
    hosted_url = serializers.CharField()
