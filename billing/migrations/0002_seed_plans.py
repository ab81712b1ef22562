"""The four plans of the original design. Staff edit them (and set Stripe price ids) in the admin."""

from decimal import Decimal

from django.db import migrations

PLANS = [
    # slug, name, $/month, requests/month, tokens/month, per minute/hour/day, tokens/min, overage
    ("free", "Free", "0", 1_000, 50_000, 20, 300, 1_000, 20_000, "block", None, 0),
    ("starter", "Starter", "29", 10_000, 500_000, 60, 1_500, 10_000, 100_000, "bill", "0.02", 1),
    ("professional", "Professional", "99", 50_000, 2_500_000, 300, 6_000, 50_000, 400_000, "bill", "0.015", 2),
    ("enterprise", "Enterprise", "299", 200_000, 10_000_000, 1_000, 20_000, 200_000, 1_000_000, "bill", "0.01", 3),
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for slug, name, price, req, tok, rpm, rph, rpd, tpm, overage, per_1k, order in PLANS:
        Plan.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "price_per_month": Decimal(price),
                "monthly_requests": req,
                "monthly_tokens": tok,
                "requests_per_minute": rpm,
                "requests_per_hour": rph,
                "requests_per_day": rpd,
                "tokens_per_minute": tpm,
                "overage": overage,
                "overage_price_per_1k_tokens": Decimal(per_1k) if per_1k else None,
                "allowed_models": [],  # every model; staff narrow it per plan in the admin
                "sort_order": order,
            },
        )


def remove_plans(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(slug__in=[p[0] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed_plans, remove_plans)]
