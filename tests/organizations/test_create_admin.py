"""The compose stack's one-shot admin service: creates the first admin from DJANGO_SUPERUSER_*,
once; reruns change nothing; bad input is refused and creates nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from organizations.models import Membership
from organizations.roles import Role

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("create_admin", stdout=out)
    return out.getvalue()


@pytest.fixture
def admin_env(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Ops@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password")
    monkeypatch.setenv("GATEWAY_ADMIN_ORGANIZATION", "Example Ops")


def test_creates_a_superuser_who_owns_an_organization(admin_env, client):
    assert "Created the admin ops@example.com" in run()
    user = User.objects.get(email="ops@example.com")
    assert user.is_staff and user.is_superuser and user.check_password("a-long-enough-password")
    membership = Membership.objects.get(user=user)
    assert (membership.organization.name, membership.role) == ("Example Ops", Role.OWNER)
    assert client.login(email="ops@example.com", password="a-long-enough-password")
    assert client.get("/admin/").status_code == 200


def test_running_again_changes_nothing(admin_env, monkeypatch):
    run()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "another-long-password")
    assert "exists already" in run()
    assert User.objects.count() == 1
    assert User.objects.get().check_password("a-long-enough-password")


def test_without_variables_it_does_nothing(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    assert "not set" in run()
    assert not User.objects.exists()


@pytest.mark.parametrize("password", ["", "123"])
def test_a_missing_or_weak_password_is_refused(admin_env, monkeypatch, password):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        run()
    assert not User.objects.exists()
