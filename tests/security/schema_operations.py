"""The management API's operations, read from the OpenAPI schema the server publishes: security
tests walk every one of them, and fail when a new one is not yet in their tables."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


# The public API answers to API keys, not roles; its tenancy is tested in tests/api.
PUBLIC_API = ("/v1/", "/api/v1/")


def schema_operations() -> list[tuple[str, str]]:
    """The management API's operations."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted(
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in METHODS and path != "/api/schema/" and not path.startswith(PUBLIC_API)
    )


def mutating_operations() -> list[tuple[str, str]]:
    return [(m, p) for m, p in schema_operations() if m != "GET"]
