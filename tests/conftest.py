"""Every test gets an organisation with an owner, an admin, a member and a viewer, and an outsider
who owns another organisation."""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings
from django.test.signals import setting_changed
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from llm import redis_clients
from organizations.api_keys import mint_api_key
from organizations.roles import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.stores import flush_test_redis, redis_unreachable_reason

# Property tests check behaviour, not speed: a loaded CI machine must not fail them on
# Hypothesis's per-example deadline.
hypothesis_settings.register_profile("gateway", deadline=None)
hypothesis_settings.load_profile("gateway")


def pytest_configure(config):
    # Tests empty the Redis they run against: refuse one that was not handed to the suite.
    url = django_settings.REDIS_URL
    if url and url != os.environ.get("GATEWAY_TEST_REDIS_URL"):
        raise pytest.UsageError(
            "REDIS_URL is set for the test run but is not GATEWAY_TEST_REDIS_URL. The suite "
            "empties the Redis database it uses: run `make test`, or set both to a database "
            "you can lose."
        )


def _reconfigure_redis(*, setting: str, **_kwargs) -> None:
    # Start-up configures the Redis clients once; a test that changes the settings does it again.
    if setting in {"REDIS_URL", "GATEWAY_REDIS_TIMEOUT_SECONDS", "GATEWAY_REDIS_MAX_CONNECTIONS"}:
        redis_clients.configure(
            django_settings.REDIS_URL,
            django_settings.GATEWAY_REDIS_TIMEOUT_SECONDS,
            django_settings.GATEWAY_REDIS_MAX_CONNECTIONS,
        )


setting_changed.connect(_reconfigure_redis)


@pytest.fixture(autouse=True)
def _empty_embedded_store():
    """Each test starts with an empty embedded store, as a fresh process does."""
    redis_clients.clear_embedded_redis()


@pytest.fixture
def sync_store(settings) -> str:
    """The Redis this run keeps its state in, emptied: the suite's real Redis when `make test`
    was handed one (REDIS_URL), else the embedded store. "redis" or "embedded"."""
    if settings.REDIS_URL:
        reason = redis_unreachable_reason()
        if reason:
            pytest.skip(reason)
        flush_test_redis()
    return "redis" if redis_clients.uses_real_redis() else "embedded"


@pytest.fixture
async def store(sync_store):
    """`sync_store` for async tests: the clients of the test's event loop are closed after it."""
    yield sync_store
    await redis_clients.close_redis()


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme", slug="acme")


def _member(org, role, email):
    user = UserFactory(email=email)
    MembershipFactory(organization=org, user=user, role=role)
    user.current_organization = org
    user.save(update_fields=["current_organization"])
    return user


@pytest.fixture
def owner(org):
    return _member(org, Role.OWNER, "owner@acme.test")


@pytest.fixture
def admin_user(org):
    return _member(org, Role.ADMIN, "admin@acme.test")


@pytest.fixture
def member(org):
    return _member(org, Role.MEMBER, "member@acme.test")


@pytest.fixture
def viewer(org):
    return _member(org, Role.VIEWER, "viewer@acme.test")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def outsider(other_org):
    return _member(other_org, Role.OWNER, "outsider@globex.test")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for():
    """client_for(user) -> an APIClient logged in with a JWT access token of that user."""

    def make(user):
        client = APIClient()
        access = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        return client

    return make


@pytest.fixture
def api_key(org, owner):
    """(row, secret) of a fresh key of the org."""
    return mint_api_key(org, name="test key", created_by=owner)


@pytest.fixture(autouse=True)
def _restore_process_singletons():
    """Tests swap the catalogue, the routing runtime and the HTTP client that start-up installs;
    the next test gets back what was in force before (nothing is recreated on first use)."""
    from llm import catalog, http, runtime

    saved = catalog._current, runtime._runtime, http._client
    yield
    catalog.set_catalog(saved[0])
    runtime.set_runtime(saved[1])
    http.set_client(saved[2])


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher is deliberately slow; tests only need it to be a hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _disconnect_server_threads_at_end(django_db_setup, django_db_blocker):
    """Live test servers' worker threads hold their own database connections; end them so the
    test database can be dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def plans(db):
    """The plans the billing migration seeds (tests run without migrations)."""
    from importlib import import_module

    from django.apps import apps

    from billing.plan_cache import forget_cached_plans

    import_module("billing.migrations.0002_seed_plans").seed_plans(apps, None)
    forget_cached_plans()
    yield
    forget_cached_plans()
