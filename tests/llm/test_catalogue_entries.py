"""The shipped catalogue is complete: every model entry has what routing and reservations need,
and every provider states its parameter rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from llm.catalog import DEFAULT_CONFIG_PATH, ModelEntry, build_catalog, load_catalog
from llm.params import PARAMS

SHIPPED = load_catalog(DEFAULT_CONFIG_PATH, environ={})
SPEC = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def missing_for_routing(model: ModelEntry) -> list[str]:
    """What a model entry lacks for routing (capabilities, rules) and reservations (caps, price)."""
    problems = []
    now = datetime.now(UTC)
    if not model.has_price_at(now):
        problems.append("no price in force today")
    if model.capabilities == {"embeddings"}:
        return problems
    if model.max_output_tokens is None:
        problems.append("no max_output_tokens (reservations bound the output by it)")
    elif model.max_output_tokens > model.context_window:
        problems.append("max_output_tokens exceeds the context window")
    if "stream" not in model.capabilities:
        problems.append("no stream capability")
    if not model.demo and model.params.default.action != "refuse":
        problems.append("its provider's rules do not refuse unlisted parameters")
    return problems


@pytest.mark.parametrize("model_id", sorted(SHIPPED.models))
def test_every_shipped_model_has_what_routing_and_reservations_need(model_id: str) -> None:
    assert missing_for_routing(SHIPPED.models[model_id]) == []


def test_a_chat_model_without_an_output_cap_or_rules_is_reported() -> None:
    lacking = build_catalog(
        """
providers:
  p: {name: P, dialect: openai, base_url: https://p.example/v1}
models:
  - id: m
    provider: p
    upstream: m
    prices: [{valid_from: 2025-01-01, input_per_mtok: "1", output_per_mtok: "2"}]
    context_window: 1000
    capabilities: [chat]
    quality_rank: 1
    speed_rank: 1
""",
        {},
    )
    assert missing_for_routing(lacking.models["m"]) == [
        "no max_output_tokens (reservations bound the output by it)",
        "no stream capability",
        "its provider's rules do not refuse unlisted parameters",
    ]


@pytest.mark.parametrize("provider_id", sorted(SPEC["providers"]))
def test_every_shipped_provider_states_a_rule_for_unlisted_parameters(provider_id: str) -> None:
    rules = SPEC["providers"][provider_id].get("params") or {}
    assert "*" in rules
    assert set(rules) <= {*PARAMS, "*"}


def test_every_chat_model_with_stream_says_what_it_does_with_stream_options() -> None:
    for model in SHIPPED.models.values():
        if "stream" in model.capabilities:
            assert model.params.rule("stream_options").action in ("accept", "drop"), model.id


def test_a_streaming_model_that_refuses_stream_options_is_a_catalogue_error() -> None:
    from llm.catalog import CatalogError

    with pytest.raises(CatalogError) as caught:
        build_catalog(
            """
providers:
  p: {name: P, dialect: openai, base_url: https://p.example/v1, params: {"*": refuse}}
models:
  - id: m
    provider: p
    upstream: m
    prices: [{valid_from: 2025-01-01, input_per_mtok: "1", output_per_mtok: "2"}]
    context_window: 1000
    capabilities: [chat, stream]
    quality_rank: 1
    speed_rank: 1
""",
            {},
        )
    assert "stream_options" in str(caught.value)
