"""Dialect registry: providers are data (models_config.yaml), dialects are code (a module each)."""

from __future__ import annotations

import importlib
from functools import cache

from llm.providers.base import Dialect

DIALECT_MODULES = {
    "openai": "llm.providers.openai_compat",
    "anthropic": "llm.providers.anthropic",
    "gemini": "llm.providers.gemini",
    "cohere": "llm.providers.cohere",
    "ollama": "llm.providers.ollama",
    "perplexity": "llm.providers.perplexity",
    "demo": "llm.providers.demo",
}

_overrides: dict[str, Dialect] = {}


def get_dialect(name: str) -> Dialect:
    if name in _overrides:
        return _overrides[name]
    return _loaded(name)


@cache
def _loaded(name: str) -> Dialect:
    """A dialect's module, imported on first use (once: every upstream call asks)."""
    try:
        module = DIALECT_MODULES[name]
    except KeyError:
        raise LookupError(f"unknown dialect {name!r}") from None
    return importlib.import_module(module).DIALECT


def register_dialect(name: str, dialect: Dialect | None) -> None:
    """Install (or with None, remove) a dialect under a name; tests use it for fakes."""
    if dialect is None:
        _overrides.pop(name, None)
    else:
        _overrides[name] = dialect
