from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from organizations.models import ApiKey, Organization, TenantQuerySet


class UsageRecord(models.Model):
    """One request through the gateway, success or failure. Append-only: never updated."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64, unique=True)  # the gateway's own id
    client_request_id = models.CharField(max_length=64, blank=True)  # X-Request-ID if sent
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    endpoint = models.CharField(max_length=40)  # chat.completions, generate, embeddings, ...
    requested_model = models.CharField(max_length=100, blank=True)  # model name or alias asked for
    provider = models.CharField(max_length=40, blank=True)
    upstream_model = models.CharField(max_length=120, blank=True)
    # Token classes as billed (bounded to what the request could produce): input_tokens is the
    # whole prompt, cache reads and writes are parts of it; reasoning is part of output_tokens;
    # tool-use prompt tokens come on top of the prompt.
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    tool_use_prompt_tokens = models.PositiveIntegerField(default=0)
    billed_input_units = models.PositiveIntegerField(null=True, blank=True)  # Cohere billed_units
    billed_output_units = models.PositiveIntegerField(null=True, blank=True)
    service_tier = models.CharField(max_length=20, blank=True)
    tokens_estimated = models.BooleanField(default=False)  # input or output estimated
    input_estimated = models.BooleanField(default=False)
    output_estimated = models.BooleanField(default=False)
    usage_anomaly = models.BooleanField(default=False)  # reported above the bound: bounded
    reported_usage = models.JSONField(null=True, blank=True)  # the counts as reported, if bounded
    cost = models.DecimalField(max_digits=18, decimal_places=8, default=0)  # USD
    price_version = models.CharField(max_length=160, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    upstream_ms = models.PositiveIntegerField(default=0)
    status = models.PositiveSmallIntegerField()  # the HTTP status we answered with
    error_class = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cache_hit = models.BooleanField(default=False)
    stream = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    # How the call ended (served, upstream_cut, failed, client_gone, deadline, stopping) and the
    # billing policy that applied (llm/outcome.py, BillingReason).
    outcome = models.CharField(max_length=20, blank=True)
    billing_reason = models.CharField(max_length=40, blank=True)
    prompt_text = models.TextField(null=True, blank=True)  # redacted; only with prompt logging

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="usage_org_created"),
            models.Index(fields=["organization", "api_key", "-created_at"], name="usage_org_key"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.endpoint} {self.status}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class AlertSettings(models.Model):
    """Who an organisation's alerts go to. Without a row: the organisation's owners and admins."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="alert_settings"
    )
    emails = models.TextField(blank=True, help_text="One address per line or comma-separated.")
    webhook_url = models.URLField(blank=True, help_text="Receives each alert as a JSON POST.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "alert recipients"
        verbose_name_plural = "alert recipients"

    def __str__(self) -> str:
        return f"Alert recipients of {self.organization}"

    def clean(self) -> None:
        from analytics.webhook_urls import UnsafeWebhookUrl, validate_on_save

        if self.webhook_url:
            try:
                validate_on_save(self.webhook_url)
            except UnsafeWebhookUrl as exc:
                raise ValidationError({"webhook_url": str(exc)}) from None

    @property
    def email_list(self) -> list[str]:
        return [e.strip() for e in self.emails.replace(",", "\n").splitlines() if e.strip()]


class AlertKind(models.TextChoices):
    PROVIDER_DOWN = "provider_down", "Provider down"
    ERROR_RATE = "error_rate", "Error rate"
    RATE_LIMIT_SPIKE = "rate_limit_spike", "Rate-limit refusals spiking"
    PLAN_USAGE = "plan_usage", "Plan usage"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    USAGE_DEAD_LETTER = "usage_dead_letter", "Usage records the database refused"
    USAGE_ANOMALY = "usage_anomaly", "Upstream usage above the request's bound"


class Alert(models.Model):
    """One incident: opened when its condition starts, resolved when it ends. The dedup key (say
    "provider_down:openai") has at most one open alert, so each incident notifies once."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    key = models.CharField(max_length=200)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )  # None: gateway-wide (staff only)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    action = models.TextField(blank=True)  # what to do about it
    context = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    recovery_notified_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_alert_per_key",
            )
        ]
        indexes = [models.Index(fields=["kind", "resolved_at"], name="alert_kind_open")]

    def __str__(self) -> str:
        return f"{self.title} ({'resolved' if self.resolved_at else 'open'})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Frequency(models.TextChoices):
    HOUR = "hour", "Hourly"
    DAY = "day", "Daily"


class UsageRollup(models.Model):
    """Totals of usage records per organisation × requested model × API key × provider × error
    class, per hour or day.

    Rebuilt from the raw records for a whole window at a time, so re-running gives the same rows.
    The foreign keys are Django's alone (no database constraint, deletes still cascade through
    the ORM): the rows are copies of records whose own keys were checked when written, and a
    catch-up writes millions of them, each of which a constraint would check at commit. Neither
    has an index of its own: reads go through `rollup_org_period`, and a deleted key's rows are
    found by a scan, rare enough not to tax every roll-up's inserts with an index.
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    model = models.CharField(max_length=100, blank=True)  # the requested model or alias
    provider = models.CharField(max_length=40, blank=True)  # the provider that answered
    error_class = models.CharField(max_length=40, blank=True)  # blank for successes
    frequency = models.CharField(max_length=4, choices=Frequency.choices)
    period_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # answered with status >= 400
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cached_input_tokens = models.PositiveBigIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    latency_ms_sum = models.PositiveBigIntegerField(default=0)  # mean latency = sum / requests

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "frequency", "period_start"], name="rollup_org_period"
            ),
            models.Index(fields=["frequency", "period_start"], name="rollup_period"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.model} {self.frequency} {self.period_start}"


class RollupFillState(models.Model):
    """High-water mark: every hour before `end` is rolled up; later records are read raw."""

    name = models.CharField(max_length=40, unique=True)
    end = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} filled to {self.end}"


class PendingRollup(models.Model):
    """An hour that received usage records since its roll-up was last rebuilt.

    The writer upserts the hour with a fresh `token` in the transaction that inserts its rows; a
    roll-up deletes the mark only if the token is still the one it read before rebuilding, so a
    row committed during the rebuild leaves the mark for the next run."""

    hour = models.DateTimeField(unique=True)
    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"{self.hour} to roll up"


class DeadLetterUsage(models.Model):
    """A usage record the database refused even after its values were bounded: kept for staff
    (admin: "Dead-letter usage"), raised as an alert, retried from the admin once fixed."""

    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    organization_id = models.BigIntegerField(null=True, blank=True)  # no FK: it may be gone
    payload = models.TextField()  # the queued JSON, as received
    error = models.TextField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    written_at = models.DateTimeField(null=True, blank=True)  # set when a retry succeeded

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "dead-letter usage record"

    def __str__(self) -> str:
        return f"{self.request_id or '?'}: {self.error[:80]}"
