"""The management API's operations, read from the OpenAPI schema the server publishes: security
tests walk every one of them, and fail when a new one is not yet in their tables."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def schema_operations() -> list[tuple[str, str]]:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted(
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in METHODS and path != "/api/schema/"
    )


def mutating_operations() -> list[tuple[str, str]]:
    return [(m, p) for m, p in schema_operations() if m != "GET"]
