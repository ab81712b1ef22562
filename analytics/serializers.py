from __future__ import annotations

from rest_framework import serializers

from analytics.models import UsageRecord


class UsageRecordSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(source="api_key.name", default=None, read_only=True)
    total_tokens = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(max_digits=18, decimal_places=8, coerce_to_string=True)

    class Meta:
        model = UsageRecord
        fields = [
            "request_id",
            "created_at",
            "endpoint",
            "requested_model",
            "provider",
            "upstream_model",
            "api_key",
            "api_key_id",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cached_input_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "reasoning_tokens",
            "tool_use_prompt_tokens",
            "billed_input_units",
            "billed_output_units",
            "service_tier",
            "tokens_estimated",
            "input_estimated",
            "output_estimated",
            "usage_anomaly",
            "reported_usage",
            "cost",
            "price_version",
            "latency_ms",
            "ttft_ms",
            "status",
            "error_class",
            "attempts",
            "cache_hit",
            "stream",
            "client_disconnected",
            "outcome",
            "billing_reason",
            "prompt_text",  # redacted; only for organisations with prompt logging on
        ]


class RecentRequestsQuery(serializers.Serializer):
    model = serializers.CharField(required=False)
    provider = serializers.CharField(required=False)
    key = serializers.IntegerField(required=False)
    status = serializers.RegexField(r"^(\d{3}|[1-5]xx|error)$", required=False)


class AnalyticsQuery(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start and end and start > end:
            raise serializers.ValidationError({"start": "Must not be after 'end'."})
        if start and end and (end - start).days > 366:
            raise serializers.ValidationError({"start": "The range is limited to 366 days."})
        return attrs
