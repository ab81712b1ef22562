from __future__ import annotations

import pytest


@pytest.fixture
def key(db, org, owner):
    from organizations.api_keys import mint_api_key

    return mint_api_key(org, name="security", created_by=owner)[1]
