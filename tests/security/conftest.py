from __future__ import annotations

# The live gateway and its fake upstreams, shared with the API tests.
from tests.api.conftest import (  # noqa: F401
    gateway,
    gateway_server,
    key,
    upstream_servers,
    upstreams,
)
