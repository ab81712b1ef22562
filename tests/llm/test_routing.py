from __future__ import annotations

import pytest

from llm.errors import (
    ModelNotAllowedError,
    NoRouteError,
    UnknownModelError,
    UnsupportedCapabilityError,
)
from llm.routing import needs_for, resolve
from llm.types import ChatRequest

from .conftest import KEYS, NOW, make_catalog, make_runtime


def ids(plan) -> list[str]:
    return plan.candidate_ids()


def test_a_concrete_model_routes_to_itself_then_its_fallbacks(catalog):
    plan = resolve(catalog, "a-big", now=NOW)
    assert ids(plan) == ["a-big", "b-mid", "g-cheap"]
    assert plan.alias is None and "fallbacks" in plan.reason
    assert plan.candidates[0].provider.id == "alpha"


def test_not_configured_providers_are_never_routed_to():
    cat = make_catalog({"ALPHA_API_KEY": "k"})
    assert ids(resolve(cat, "a-big", now=NOW)) == ["a-big"]
    assert "beta" not in {c.provider.id for c in resolve(cat, "cheapest", now=NOW).candidates}
    with pytest.raises(NoRouteError, match="beta not configured"):
        resolve(cat, "b-mid", now=NOW)


def test_cheapest_orders_by_blended_price(catalog):
    assert ids(resolve(catalog, "cheapest", now=NOW)) == ["g-cheap", "a-small", "b-mid", "a-big"]


def test_cheapest_uses_the_price_in_force_at_the_time():
    cat = make_catalog({"ALPHA_API_KEY": "k", "BETA_API_KEY": "k"})
    from datetime import UTC, datetime

    # b-mid blends (3x3 + 15)/4 = 6 before June and (3x2 + 10)/4 = 4 after; a-big blends 7.
    assert ids(resolve(cat, "cheapest", now=datetime(2025, 3, 1, tzinfo=UTC)))[-2:] == [
        "b-mid",
        "a-big",
    ]


def test_best_orders_by_quality_rank(catalog):
    assert ids(resolve(catalog, "best", now=NOW)) == ["a-big", "b-mid", "a-small", "g-cheap"]


def test_balanced_weighs_quality_price_and_speed(catalog):
    # positions (0..1) quality/price/speed, score .5q + .3p + .2s:
    # a-small 2/3,1/3,0 -> .433; a-big 0,1,1 -> .5; b-mid 1/3,2/3,2/3 -> .5 (tie: better quality
    # first); g-cheap 1,0,1/3 -> .567
    assert ids(resolve(catalog, "balanced", now=NOW)) == ["a-small", "a-big", "b-mid", "g-cheap"]


async def test_fastest_uses_speed_rank_until_latency_is_observed(catalog, clock):
    runtime = make_runtime(clock)
    health = runtime.health
    assert ids(resolve(catalog, "fastest", health=health, now=NOW)) == [
        "a-small",
        "g-cheap",
        "b-mid",
        "a-big",
    ]
    for _ in range(3):
        await health.record("beta", "b-mid", ok=True, latency_ms=120)
        await health.record("alpha", "a-small", ok=True, latency_ms=900)
    await health.refresh(force=True)
    # Measured models come first by latency; unmeasured ones follow by speed_rank.
    assert ids(resolve(catalog, "fastest", health=health, now=NOW)) == [
        "b-mid",
        "a-small",
        "g-cheap",
        "a-big",
    ]


def test_a_user_alias_keeps_its_listed_order(catalog):
    plan = resolve(catalog, "pair", now=NOW)
    assert ids(plan) == ["b-mid", "a-small"] and plan.alias == "pair"


def test_a_strategy_alias_applies_its_capability_filter(catalog):
    assert ids(resolve(catalog, "cheap-tools", now=NOW)) == ["a-small", "b-mid", "a-big"]


def test_capability_needs_filter_the_candidates(catalog):
    assert ids(resolve(catalog, "cheapest", needs={"chat", "structured"}, now=NOW)) == [
        "b-mid",
        "a-big",
    ]
    assert ids(resolve(catalog, "a-big", needs={"chat", "tools"}, now=NOW)) == ["a-big", "b-mid"]
    assert ids(resolve(catalog, "best", needs={"embeddings"}, now=NOW)) == ["emb"]


def test_a_model_lacking_a_needed_capability_is_a_clear_error(catalog):
    with pytest.raises(UnsupportedCapabilityError, match="vision"):
        resolve(catalog, "g-cheap", needs={"chat", "vision"}, now=NOW)


def test_needs_are_derived_from_the_request():
    request = ChatRequest(
        model="x",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}],
        tools=[{"type": "function", "function": {"name": "f"}}],
        response_format={"type": "json_schema", "json_schema": {}},
        stream=True,
    )
    assert needs_for(request) == {"chat", "stream", "tools", "structured", "vision"}
    assert needs_for(ChatRequest(model="x", messages=[])) == {"chat"}


def test_an_unknown_name_lists_what_exists(catalog):
    with pytest.raises(UnknownModelError) as caught:
        resolve(catalog, "gpt-9", now=NOW)
    assert caught.value.http_status == 404
    assert {"cheapest", "fastest", "best", "balanced", "pair", "a-big", "emb"} <= set(
        caught.value.available
    )


def test_the_allow_list_limits_names_and_candidates(catalog):
    allowed = {"a-big", "g-cheap", "cheapest", "a-small"}
    assert ids(resolve(catalog, "a-big", allowed=allowed, now=NOW)) == ["a-big", "g-cheap"]
    assert ids(resolve(catalog, "cheapest", allowed=allowed, now=NOW)) == [
        "g-cheap",
        "a-small",
        "a-big",
    ]
    with pytest.raises(ModelNotAllowedError):
        resolve(catalog, "b-mid", allowed=allowed, now=NOW)
    with pytest.raises(UnknownModelError) as caught:
        resolve(catalog, "nope", allowed=lambda name: name.startswith("a-"), now=NOW)
    assert caught.value.available == ["a-big", "a-small"]


def test_demo_models_only_count_when_no_real_model_qualifies():
    with_demo = make_catalog({**KEYS, "GATEWAY_DEMO_PROVIDER": "1"})
    assert "demo-fast" not in ids(resolve(with_demo, "cheapest", now=NOW))
    demo_only = make_catalog({"GATEWAY_DEMO_PROVIDER": "true"})
    assert ids(resolve(demo_only, "fastest", now=NOW)) == ["demo-fast"]


def test_a_keyless_provider_is_routed_once_enabled():
    cat = make_catalog({"LOCAL_BASE_URL": "http://box:11434"})
    assert ids(resolve(cat, "cheapest", now=NOW)) == ["l-free"]


def test_open_circuits_are_skipped_and_said_so(catalog):
    plan = resolve(catalog, "a-big", open_circuits={"alpha"}, now=NOW)
    assert ids(plan) == ["b-mid", "g-cheap"]
    assert "circuit open: skipped alpha" in plan.reason


def test_when_every_circuit_is_open_the_best_candidate_is_still_tried(catalog):
    plan = resolve(catalog, "a-big", open_circuits={"alpha", "beta", "gamma"}, now=NOW)
    assert ids(plan) == ["a-big"] and "all circuits open" in plan.reason


def test_the_plan_explains_itself_in_headers(catalog):
    headers = resolve(catalog, "cheapest", now=NOW).headers()
    assert headers["X-Gateway-Route-Alias"] == "cheapest"
    assert headers["X-Gateway-Candidates"] == "g-cheap, a-small, b-mid, a-big"
    assert "lowest blended price" in headers["X-Gateway-Route-Reason"]
