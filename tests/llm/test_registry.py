"""Every dialect the registry names is importable and implements the protocol."""

from __future__ import annotations

import inspect

import pytest

from llm.providers import DIALECT_MODULES, get_dialect


@pytest.mark.parametrize("name", sorted(DIALECT_MODULES))
def test_each_registered_dialect_answers_to_its_name_with_the_four_calls(name: str) -> None:
    dialect = get_dialect(name)

    assert dialect.name == name
    assert inspect.iscoroutinefunction(dialect.chat)
    assert inspect.isasyncgenfunction(dialect.stream)
    assert inspect.iscoroutinefunction(dialect.embed)
    assert inspect.iscoroutinefunction(dialect.list_models)
