"""Plans (data, editable by staff) and each organisation's billing state."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from billing.plan_cache import forget_cached_plans
from organizations.models import Organization, TenantQuerySet


class Overage(models.TextChoices):
    BLOCK = "block", "Blocked at the limit"
    BILL = "bill", "Billed per 1K tokens (metered)"


class Plan(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)
    price_per_month = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    monthly_requests = models.PositiveIntegerField(null=True, blank=True)  # None = unlimited
    monthly_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    # The organisation's monthly spend cap in USD (None = none): admission refuses past it.
    monthly_budget_usd = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    requests_per_hour = models.PositiveIntegerField(null=True, blank=True)
    requests_per_day = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # Model ids and aliases the plan may use; an empty list means every model.
    allowed_models = models.JSONField(default=list, blank=True)
    overage = models.CharField(max_length=10, choices=Overage.choices, default=Overage.BLOCK)
    overage_price_per_1k_tokens = models.DecimalField(
        max_digits=10, decimal_places=6, null=True, blank=True
    )
    stripe_price_id = models.CharField(max_length=255, blank=True)  # the monthly fee
    stripe_overage_price_id = models.CharField(max_length=255, blank=True)  # metered, per meter
    is_public = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price_per_month"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        forget_cached_plans()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        forget_cached_plans()
        return result


class SubscriptionStatus(models.TextChoices):
    NONE = "none", "No subscription"
    ACTIVE = "active", "Active"
    TRIALING = "trialing", "Trialing"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    INCOMPLETE = "incomplete", "Incomplete"


class BillingAccount(models.Model):
    """An organisation's link to Stripe; `Organization.plan` stays what the gateway reads."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="billing_account"
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(
        max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.NONE
    )
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    past_due_notified_at = models.DateTimeField(null=True, blank=True)
    downgraded_at = models.DateTimeField(null=True, blank=True)
    # Stripe's `created` of the last subscription state applied: an older state never wins.
    state_as_of = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.organization} ({self.status})"


class ProcessedEvent(models.Model):
    """Stripe events already applied, by event id: a redelivery changes nothing."""

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.stripe_event_id} {self.type}"


class MeterReport(models.Model):
    """Overage tokens reported to Stripe's meter: per organisation and hour slice, the first
    report (sequence 0) and one more for each difference late records made."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    slice_start = models.DateTimeField()
    sequence = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField()
    identifier = models.CharField(max_length=120, unique=True)  # Stripe's idempotency identifier
    reported_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slice_start", "sequence"],
                name="one_meter_report_per_slice_sequence",
            )
        ]

    def __str__(self) -> str:
        return f"{self.identifier}: {self.tokens} tokens"


class Invoice(models.Model):
    """A Stripe invoice of the organisation's customer, copied by `billing.invoices.sync_invoices`.

    Our own small table rather than dj-stripe's: its model sync re-fetches the customer, the
    subscription, charges and line items one call at a time, for fields the billing page never
    shows."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    stripe_id = models.CharField(max_length=255, unique=True)
    number = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20)  # Stripe's: open, paid, uncollectible, void
    # In the currency's major unit, converted exactly from Stripe's smallest unit.
    amount_due = models.DecimalField(max_digits=14, decimal_places=3)
    amount_paid = models.DecimalField(max_digits=14, decimal_places=3)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    hosted_url = models.URLField(max_length=1000, blank=True)
    pdf_url = models.URLField(max_length=1000, blank=True)
    created = models.DateTimeField()
    synced_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "-created"], name="invoice_org_newest")]

    def __str__(self) -> str:
        return f"{self.number or self.stripe_id} {self.status}"
