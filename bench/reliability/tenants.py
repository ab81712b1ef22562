"""The suite's tenants, made inside the gateway by `manage.py shell -c <this file's text>`.

Reads the spec from RELIABILITY_TENANTS (JSON: name -> plan limits, key limits), creates one user,
organisation, private plan and API key per name, and prints one line `TENANTS=<json>` with each
tenant's key, organisation id and key id. Each scenario gets its own tenant, so counters and
quotas of one scenario never touch another's.
"""

from __future__ import annotations

import json
import os

from django.db import transaction

from accounts.models import User
from billing.models import BillingAccount, Plan
from organizations.api_keys import mint_api_key
from organizations.memberships import create_organization

PASSWORD = "reliability-suite-password-1"  # a throwaway cluster's users, deleted with it
spec = json.loads(os.environ["RELIABILITY_TENANTS"])
made = {}
with transaction.atomic():
    for name, wanted in spec.items():
        slug = f"rel-{name}"[:40]
        Plan.objects.update_or_create(
            slug=slug, defaults={"name": slug, "is_public": False, **wanted.get("plan", {})}
        )
        user = User.objects.create_user(f"{name}@reliability.example.com", PASSWORD)
        org = create_organization(name=f"Reliability {name}", owner=user)
        org.plan = slug
        org.save(update_fields=["plan"])
        BillingAccount.objects.update_or_create(
            organization=org, defaults={"stripe_customer_id": f"cus_rel_{org.pk}"}
        )
        key, secret = mint_api_key(org, name=name, created_by=user, **wanted.get("key", {}))
        made[name] = {
            "key": secret,
            "org_id": org.pk,
            "key_id": key.pk,
            "email": user.email,
            "password": PASSWORD,
        }

print("TENANTS=" + json.dumps(made))
