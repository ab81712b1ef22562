"""`make run`'s seed_demo keeps the demo key across restarts and says which plan applies."""

from __future__ import annotations

import io
import stat

import pytest
from django.core.management import call_command

from billing.limits import limits_for_plan
from organizations.api_keys import find_api_key, revoke_api_key
from organizations.models import ApiKey

pytestmark = pytest.mark.django_db


def seed(key_file) -> str:
    out = io.StringIO()
    call_command("seed_demo", key_file=key_file, stdout=out)
    return out.getvalue()


def printed_key(output: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if "API key" in line)


def test_a_restart_keeps_the_demo_key(tmp_path, plans):
    key_file = tmp_path / ".demo-key"
    first = printed_key(seed(key_file))
    second_output = seed(key_file)
    assert printed_key(second_output) == first
    assert "kept from" in second_output
    assert find_api_key(first) is not None  # still works: nothing was revoked
    assert ApiKey.objects.count() == 1
    assert not ApiKey.objects.filter(is_revoked=True).exists()


def test_the_key_file_is_private(tmp_path, plans):
    key_file = tmp_path / ".demo-key"
    secret = printed_key(seed(key_file))
    assert key_file.read_text().strip() == secret
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_key_that_no_longer_works_is_replaced(tmp_path, plans):
    key_file = tmp_path / ".demo-key"
    first = printed_key(seed(key_file))
    revoke_api_key(find_api_key(first))
    output = seed(key_file)
    second = printed_key(output)
    assert second != first and find_api_key(second) is not None
    assert "new, saved in" in output
    assert key_file.read_text().strip() == second


def test_it_says_which_plan_applies_and_its_limits(tmp_path, plans):
    output = seed(tmp_path / ".demo-key")
    free = limits_for_plan("free")
    assert free.plan_name == "Free"
    plan_line = next(line for line in output.splitlines() if line.strip().startswith("plan"))
    assert "Free" in plan_line
    assert f"{free.requests_per_minute:,} requests/minute" in plan_line
    assert f"{free.monthly_tokens:,} tokens/month" in plan_line
    assert "Stripe is not configured" in output
