from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.utils import timezone

from analytics.models import UsageRecord

_ids = count(1)


@pytest.fixture
def browser(client, plans):
    """browser(user) -> Django's test client signed in as that user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def record():
    """record(org, **fields) -> a usage record (a successful gpt-4o-mini call by default)."""

    def make(org, **fields):
        values = {
            "organization": org,
            "request_id": f"req-{next(_ids)}",
            "created_at": timezone.now() - timedelta(minutes=5),
            "endpoint": "chat.completions",
            "requested_model": "gpt-4o-mini",
            "provider": "openai",
            "upstream_model": "gpt-4o-mini-2024-07-18",
            "input_tokens": 100,
            "output_tokens": 20,
            "cost": Decimal("0.00002700"),
            "latency_ms": 250,
            "status": 200,
            "attempts": 1,
        }
        return UsageRecord.objects.create(**(values | fields))

    return make


@pytest.fixture
def constant_queries(django_assert_num_queries):
    """constant_queries(client, url, grow): the page costs as many queries after grow() adds
    rows as before (no N+1). Returns that number."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def check(client, url: str, grow) -> int:
        assert client.get(url).status_code == 200  # warm caches (plans, catalogue, session)
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        grow()
        with django_assert_num_queries(len(few)):
            assert client.get(url).status_code == 200
        return len(few)

    return check
