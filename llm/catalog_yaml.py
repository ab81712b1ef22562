"""Reading models_config.yaml with line numbers, and its JSON Schema.

Errors must point at the line a person has to fix, so the file is composed into YAML nodes first:
the nodes keep their marks, the data is built from the same nodes, and any error path (a list of
keys and indexes) is mapped back to the deepest node that exists on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from llm.params import ACTIONS, PARAMS

DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
CAPABILITIES = [
    "chat",
    "stream",
    "tools",
    "json",
    "structured",
    "vision",
    "reasoning",
    "embeddings",
]
STRATEGIES = ["fastest", "cheapest", "best", "balanced"]
DIALECTS = ["openai", "anthropic", "gemini", "cohere", "ollama", "perplexity", "demo"]

_price = {"type": "string", "pattern": DECIMAL_PATTERN}
_id = {"type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9._:/-]+$"}
_rank = {"type": "integer", "minimum": 1}
_action = {"enum": list(ACTIONS)}
_params = {
    "type": "object",
    "propertyNames": {"enum": [*PARAMS, "*"]},
    "additionalProperties": {
        "oneOf": [
            {"enum": ["accept", "drop", "refuse"]},
            {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "action": _action,
                    "rename": {"type": "string", "minLength": 1},
                    "to": {"type": "string", "minLength": 1},
                    "only": {"type": "array", "minItems": 1},
                    "max": {"type": "number"},
                    "not_with": {"enum": list(PARAMS)},
                    "otherwise": {"enum": ["drop", "refuse"]},
                    "why": {"type": "string"},
                },
            },
        ]
    },
}
# Per-million-token rates by token class; a tier (long context, service tier) restates some.
RATE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_5m_per_mtok",
    "cache_write_1h_per_mtok",
)
_rates = dict.fromkeys(RATE_FIELDS, _price)
_tier = {
    "type": "object",
    "required": ["input_per_mtok"],
    "additionalProperties": False,
    "properties": _rates,
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["providers", "models"],
    "additionalProperties": False,
    "properties": {
        "providers": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[a-z0-9_-]+$"},
            "additionalProperties": {
                "type": "object",
                "required": ["name", "dialect", "base_url"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "dialect": {"enum": DIALECTS},
                    "base_url": {"type": "string", "pattern": r"^[a-z]+://"},
                    "requires_key": {"type": "boolean"},
                    "enabled_by": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$"},
                    "env_prefix": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "quirks": {"type": "object"},
                    "params": _params,
                },
            },
        },
        "models": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "provider",
                    "upstream",
                    "prices",
                    "context_window",
                    "capabilities",
                    "quality_rank",
                    "speed_rank",
                ],
                "additionalProperties": False,
                "properties": {
                    "id": _id,
                    "provider": {"type": "string"},
                    "upstream": {"type": "string", "minLength": 1},
                    "demo": {"type": "boolean"},
                    "description": {"type": "string"},
                    "prices": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["valid_from", "input_per_mtok"],
                            "additionalProperties": False,
                            "properties": {
                                "valid_from": {"type": "string", "pattern": DATE_PATTERN},
                                **_rates,
                                "per_request": _price,
                                "long_context": {
                                    "type": "object",
                                    "required": ["above_input_tokens", "input_per_mtok"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "above_input_tokens": {"type": "integer", "minimum": 1},
                                        **_rates,
                                    },
                                },
                                "service_tiers": {
                                    "type": "object",
                                    "propertyNames": {"pattern": r"^[a-z0-9_-]+$"},
                                    "additionalProperties": _tier,
                                },
                                "request_fees": {
                                    "type": "object",
                                    "propertyNames": {"pattern": r"^[A-Za-z0-9_.-]+=[^=]+$"},
                                    "additionalProperties": _price,
                                },
                            },
                        },
                    },
                    "context_window": {"type": "integer", "minimum": 1},
                    "max_output_tokens": {"type": "integer", "minimum": 1},
                    "capabilities": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"enum": CAPABILITIES},
                    },
                    "quality_rank": _rank,
                    "speed_rank": _rank,
                    "fallbacks": {"type": "array", "items": {"type": "string"}},
                    "params": _params,
                },
            },
        },
        "aliases": {
            "type": "object",
            "propertyNames": _id,
            "additionalProperties": {
                "oneOf": [
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "description": {"type": "string"},
                            "models": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            "strategy": {"enum": STRATEGIES},
                            "filters": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "providers": {"type": "array", "items": {"type": "string"}},
                                    "models": {"type": "array", "items": {"type": "string"}},
                                    "capabilities": {
                                        "type": "array",
                                        "items": {"enum": CAPABILITIES},
                                    },
                                },
                            },
                        },
                        "oneOf": [{"required": ["models"]}, {"required": ["strategy"]}],
                    },
                ]
            },
        },
    },
}


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based
    field: str  # e.g. "models[3].prices[0].input_per_mtok"
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.field or '<top>'}: {self.message}"


class CatalogError(Exception):
    """The catalogue file is unreadable or inconsistent; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n  ".join(p.render(source) for p in problems)
        super().__init__(f"invalid model catalogue ({len(problems)} problem(s)):\n  {lines}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text: valid_from is parsed by us, with our error message."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def format_path(path: list[Any] | tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse text into (data, root node); syntax errors and duplicate keys raise CatalogError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        duplicates = list(_find_duplicate_keys(node, []))
        if duplicates:
            raise CatalogError(source, duplicates)
        return loader.construct_document(node), node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CatalogError(source, [Problem(line, "", f"YAML syntax: {exc.problem}")]) from None
    finally:
        loader.dispose()


def _find_duplicate_keys(node: yaml.Node, path: list[Any]):
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                yield Problem(
                    key_node.start_mark.line + 1, format_path([*path, key]), "duplicate key"
                )
            seen.add(key)
            yield from _find_duplicate_keys(value_node, [*path, key])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _find_duplicate_keys(item, [*path, i])


def line_of(root: yaml.Node | None, path: list[Any] | tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node on path (a key's line when the path ends at a key)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            key_node, node = match
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
