"""Which plans customers see and may subscribe to (shared by the API and the billing page)."""

from __future__ import annotations

from billing.models import Plan


def list_public_plans() -> list[Plan]:
    return list(Plan.objects.filter(is_public=True))


def find_subscribable_plan(slug: str) -> Plan | None:
    """A public plan with a Stripe price, or None (the free plan is never subscribed to)."""
    if not slug:
        return None
    return Plan.objects.filter(slug=slug, is_public=True).exclude(stripe_price_id="").first()
