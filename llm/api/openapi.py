"""The public API in the OpenAPI schema.

drf-spectacular describes DRF views only; the public API (/v1/, /api/v1/) is plain async Django
views, described in public_openapi.yaml. This postprocessing hook (SPECTACULAR_SETTINGS) merges
that description into the generated schema, and gives every management operation its one error
shape, so /api/schema/ and /api/docs/ cover the whole gateway.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

PUBLIC_SPEC = Path(__file__).with_name("public_openapi.yaml")

MANAGEMENT_ERROR = {
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in one sentence."},
        "code": {"type": "string", "description": "A machine-readable code."},
        "fields": {
            "type": "object",
            "description": "Invalid input: the messages per field.",
            "additionalProperties": {},
        },
    },
}


@functools.cache
def load_public_spec() -> dict[str, Any]:
    return yaml.safe_load(PUBLIC_SPEC.read_text())


def add_public_api(result: dict[str, Any], generator=None, request=None, public=None):
    spec = copy.deepcopy(load_public_spec())
    components = result.setdefault("components", {})
    for section, entries in spec["components"].items():
        merge_unique(components.setdefault(section, {}), entries, section)
    merge_unique(components.setdefault("securitySchemes", {}), spec["securitySchemes"], "auth")
    components["schemas"]["ManagementError"] = MANAGEMENT_ERROR
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                add_management_errors(operation)
    result["paths"] = {**spec["paths"], **result.get("paths", {})}
    result["tags"] = [*spec["tags"], *result.get("tags", [])]
    return result


def merge_unique(target: dict[str, Any], entries: dict[str, Any], what: str) -> None:
    clash = set(target) & set(entries)
    if clash:
        raise ValueError(f"public_openapi.yaml redefines {what}: {', '.join(sorted(clash))}")
    target.update(entries)


def add_management_errors(operation: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/ManagementError"}
    operation.setdefault("responses", {}).setdefault(
        "4XX",
        {
            "description": "Refused: invalid input (with `fields`), not authenticated, "
            "not allowed, not found or throttled.",
            "content": {"application/json": {"schema": error}},
        },
    )
