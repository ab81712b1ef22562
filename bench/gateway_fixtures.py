"""Benchmark fixtures, run inside the gateway by `manage.py shell -c <this file's text>`.

Creates (once) a user and an organisation on a "bench" plan whose limits are all unlimited, so
rate limits, quotas and reserve/settle all run on every request but never refuse one; mints a
fresh API key and prints it on a line of its own.
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction

from accounts.models import User
from organizations.api_keys import mint_api_key
from organizations.memberships import create_organization
from organizations.models import ApiKey, Membership

BENCH_EMAIL = "bench@example.com"
BENCH_PLAN = "bench"
# The largest value each per-key override column holds: the limit is checked, never reached.
KEY_LIMITS = {
    "rate_limit_per_minute": 2_000_000_000,
    "rate_limit_per_hour": 2_000_000_000,
    "rate_limit_per_day": 2_000_000_000,
    "tokens_per_minute": 2_000_000_000,
}


def ensure_unlimited_plan() -> str:
    """A private plan with no limits, where the billing app keeps plans in a table."""
    try:
        plan_model = apps.get_model("billing", "Plan")
    except LookupError:
        return "free"
    defaults = {"name": "Benchmark"}
    field_names = {field.name for field in plan_model._meta.get_fields()}
    if "is_public" in field_names:
        defaults["is_public"] = False
    plan_model.objects.update_or_create(slug=BENCH_PLAN, defaults=defaults)
    return BENCH_PLAN


with transaction.atomic():
    user = User.objects.filter(email=BENCH_EMAIL).first()
    if user is None:
        user = User.objects.create_user(BENCH_EMAIL, None)
        create_organization(name="Benchmark", owner=user)
    org = Membership.objects.filter(user=user).first().organization
    org.plan = ensure_unlimited_plan()
    org.save(update_fields=["plan"])
    ApiKey.objects.for_org(org).filter(name="bench", is_revoked=False).update(is_revoked=True)
    _, secret = mint_api_key(org, name="bench", created_by=user, **KEY_LIMITS)

print(f"BENCH_API_KEY={secret}")
