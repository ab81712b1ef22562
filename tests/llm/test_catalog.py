from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from llm import catalog as catalog_module
from llm.catalog import (
    DEFAULT_CONFIG_PATH,
    CatalogError,
    NoPriceError,
    build_catalog,
    load_catalog,
    reload_catalog,
)

from .conftest import KEYS, TEST_CATALOG, make_catalog

TWELVE = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "mistral": "https://api.mistral.ai/v1",
    "cohere": "https://api.cohere.com",
    "huggingface": "https://router.huggingface.co/v1",
    "ollama": "http://localhost:11434",
    "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepseek": "https://api.deepseek.com",
}


def problems_of(text: str, environ=None) -> list:
    with pytest.raises(CatalogError) as caught:
        build_catalog(text, environ or {}, source="broken.yaml")
    return caught.value.problems


# --- the shipped file ----------------------------------------------------------------------


def test_the_shipped_catalogue_loads_and_names_the_twelve_providers_plus_demo():
    shipped = load_catalog(DEFAULT_CONFIG_PATH, environ={})
    assert set(shipped.providers) == set(TWELVE) | {"demo"}
    for pid, url in TWELVE.items():
        assert shipped.provider(pid).base_url == url


def test_every_shipped_model_has_a_price_today_and_an_existing_provider():
    shipped = load_catalog(DEFAULT_CONFIG_PATH, environ={})
    today = datetime.now(UTC)
    for model in shipped.models.values():
        assert model.provider in shipped.providers
        row = model.price_at(today)
        assert row.input_per_mtok >= 0 and row.output_per_mtok >= 0
        assert isinstance(row.input_per_mtok, Decimal)


def test_every_provider_of_the_shipped_catalogue_offers_at_least_two_models():
    shipped = load_catalog(DEFAULT_CONFIG_PATH, environ={})
    for pid in shipped.providers:
        assert sum(m.provider == pid for m in shipped.models.values()) >= 2, pid


def test_the_shipped_demo_models_belong_to_the_demo_provider_and_are_labelled_demo():
    shipped = load_catalog(DEFAULT_CONFIG_PATH, environ={})
    for mid in ("demo-fast", "demo-smart"):
        assert shipped.model(mid).provider == "demo" and shipped.model(mid).demo


def test_nothing_is_configured_without_keys_and_the_demo_only_with_its_flag():
    assert load_catalog(DEFAULT_CONFIG_PATH, environ={}).configured == frozenset()
    demo = load_catalog(DEFAULT_CONFIG_PATH, environ={"GATEWAY_DEMO_PROVIDER": "1"})
    assert demo.configured == {"demo"}
    assert (
        load_catalog(DEFAULT_CONFIG_PATH, environ={"GATEWAY_DEMO_PROVIDER": "0"}).configured
        == set()
    )


def test_ollama_is_configured_by_its_base_url_and_needs_no_key():
    shipped = load_catalog(DEFAULT_CONFIG_PATH, environ={"OLLAMA_BASE_URL": "http://gpu:11434/"})
    assert shipped.configured == {"ollama"}
    assert shipped.provider("ollama").base_url == "http://gpu:11434"


# --- environment ---------------------------------------------------------------------------


def test_keys_and_base_url_overrides_come_from_the_environment():
    cat = make_catalog({"ALPHA_API_KEY": "secret", "BETA_BASE_URL": "https://proxy.example"})
    assert cat.provider("alpha").api_key == "secret"
    assert cat.is_configured("alpha") and not cat.is_configured("beta")
    assert cat.provider("beta").base_url == "https://proxy.example"
    assert cat.provider("gamma").api_key is None


def test_gateway_models_config_points_at_another_file(tmp_path: Path):
    other = tmp_path / "mine.yaml"
    other.write_text(TEST_CATALOG)
    cat = load_catalog(environ={"GATEWAY_MODELS_CONFIG": str(other), **KEYS})
    assert "a-big" in cat.models and cat.source == str(other)


def test_reload_swaps_the_catalogue_and_keeps_the_old_one_when_the_new_file_is_broken(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(TEST_CATALOG)
    first = reload_catalog(path, environ=KEYS)
    assert catalog_module.get_catalog() is first
    path.write_text(TEST_CATALOG.replace('input_per_mtok: "4.00"', 'input_per_mtok: "5.00"'))
    second = reload_catalog(path, environ=KEYS)
    assert catalog_module.get_catalog() is second
    assert second.price_at("a-big", date(2025, 2, 1)).input_per_mtok == Decimal("5.00")
    path.write_text("providers: [")
    with pytest.raises(CatalogError):
        reload_catalog(path, environ=KEYS)
    assert catalog_module.get_catalog() is second


# --- prices --------------------------------------------------------------------------------


def test_price_at_picks_the_latest_row_in_force_and_names_its_version():
    cat = make_catalog(KEYS)
    before = cat.price_at("b-mid", datetime(2025, 5, 31, 23, 59, tzinfo=UTC))
    assert (before.input_per_mtok, before.version) == (Decimal("3.00"), "b-mid@2025-01-01")
    on_the_day = cat.price_at("b-mid", date(2025, 6, 1))
    assert (on_the_day.input_per_mtok, on_the_day.version) == (Decimal("2.00"), "b-mid@2025-06-01")
    assert cat.price_at("b-mid", date(2030, 1, 1)).version == "b-mid@2025-06-01"


def test_price_at_uses_the_utc_date_of_an_aware_datetime():
    from datetime import timedelta, timezone

    tokyo = timezone(timedelta(hours=9))
    # 2025-06-01 08:00 in Tokyo is still 2025-05-31 in UTC.
    assert make_catalog(KEYS).price_at("b-mid", datetime(2025, 6, 1, 8, tzinfo=tokyo)).version == (
        "b-mid@2025-01-01"
    )


def test_price_at_before_the_first_row_raises():
    with pytest.raises(NoPriceError):
        make_catalog(KEYS).price_at("b-mid", date(2024, 12, 31))


# --- validation errors name the line and field ---------------------------------------------


def test_a_negative_price_is_reported_with_its_line_and_field():
    broken = TEST_CATALOG.replace('input_per_mtok: "0.50"', 'input_per_mtok: "-0.50"')
    (problem,) = problems_of(broken)
    assert problem.field == "models[1].prices[0].input_per_mtok"
    assert problem.line == TEST_CATALOG.splitlines().index("  - id: a-small") + 4
    assert "decimal" in problem.message


def test_an_unquoted_float_price_is_refused_with_advice():
    broken = TEST_CATALOG.replace('input_per_mtok: "0.10"', "input_per_mtok: 0.10")
    (problem,) = problems_of(broken)
    assert problem.field == "models[3].prices[0].input_per_mtok"
    assert "quoted decimal" in problem.message


def test_an_unknown_provider_is_reported_at_the_models_provider_line():
    broken = TEST_CATALOG.replace("provider: gamma", "provider: gama")
    (problem,) = problems_of(broken)
    assert problem.field == "models[3].provider"
    assert problem.line == TEST_CATALOG.splitlines().index("    provider: gamma") + 1
    assert "gama" in problem.message
    assert "broken.yaml:" in str(CatalogError("broken.yaml", [problem]))


def test_fallbacks_and_aliases_must_name_existing_models():
    broken = TEST_CATALOG.replace("fallbacks: [b-mid, g-cheap]", "fallbacks: [b-mid, nope]")
    broken = broken.replace("pair: [b-mid, a-small]", "pair: [b-mid, gone]")
    fields = {p.field: p.message for p in problems_of(broken)}
    assert "unknown model 'nope'" in fields["models[0].fallbacks[1]"]
    assert "unknown model 'gone'" in fields["aliases.pair[1]"]


def test_price_rows_must_be_strictly_increasing_in_valid_from():
    broken = TEST_CATALOG.replace("valid_from: 2025-06-01", "valid_from: 2025-01-01")
    (problem,) = problems_of(broken)
    assert problem.field == "models[2].prices[1].valid_from"
    assert "strictly later" in problem.message


def test_a_cached_price_above_the_input_price_is_refused():
    broken = TEST_CATALOG.replace('cached_input_per_mtok: "0.30"', 'cached_input_per_mtok: "3.30"')
    (problem,) = problems_of(broken)
    assert problem.field == "models[2].prices[0].cached_input_per_mtok"


def test_an_embeddings_model_may_not_have_an_output_price():
    broken = TEST_CATALOG.replace(
        'input_per_mtok: "0.02"}', 'input_per_mtok: "0.02", output_per_mtok: "1"}'
    )
    (problem,) = problems_of(broken)
    assert problem.field == "models[6].prices[0].output_per_mtok"


def test_an_unknown_field_and_a_bad_capability_are_named():
    broken = TEST_CATALOG.replace("context_window: 32000", "context_window: 32000\n    colour: red")
    broken = broken.replace(
        "capabilities: [chat, stream]\n    quality_rank: 4",
        "capabilities: [chat, telepathy]\n    quality_rank: 4",
    )
    fields = {p.field: p.message for p in problems_of(broken)}
    assert "colour" in fields["models[3]"]
    assert "telepathy" in fields["models[3].capabilities[1]"]


def test_a_duplicate_key_is_reported_on_its_line():
    broken = TEST_CATALOG.replace(
        "  gamma: {", "  alpha: {name: Again, dialect: openai, base_url: https://x}\n  gamma: {"
    )
    (problem,) = problems_of(broken)
    assert problem.field == "providers.alpha"
    assert problem.line == 4 and "duplicate" in problem.message


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("providers:\n  alpha: {name: A\nmodels: []\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, environ={})
    assert caught.value.problems[0].line is not None
    assert "YAML syntax" in str(caught.value) and str(path) in str(caught.value)


def test_redefining_a_builtin_strategy_alias_is_refused():
    broken = TEST_CATALOG.replace("pair: [b-mid, a-small]", "cheapest: [b-mid]")
    (problem,) = problems_of(broken)
    assert problem.field == "aliases.cheapest" and "built-in" in problem.message
