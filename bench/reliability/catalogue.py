"""The suite's model catalogue: OpenAI-dialect providers on the fake upstream, each model falling
back to `rel-chat-backup`.

Each upstream fault has a provider of its own (`faulty_5xx`, ...), so the health, circuit and
back-off state that one fault leaves behind in the gateway never decides another scenario.
`primary` serves every scenario that does not fault the upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

FAULTS = ("5xx", "429", "silence", "stall", "truncate", "cut", "huge", "absurd")
PROVIDERS = ("primary", "fallback", *(f"faulty_{fault}" for fault in FAULTS))
PRICE = {"valid_from": "2024-07-18", "input_per_mtok": "0.15", "output_per_mtok": "0.60"}


def api_key(provider: str) -> str:
    return f"sk-rel-{provider}"


def model_for(provider: str) -> str:
    """The model id a client asks for to reach `provider` first."""
    return {"primary": "rel-chat", "fallback": "rel-chat-backup"}.get(
        provider, f"rel-{provider.removeprefix('faulty_')}"
    )


def model(provider: str, rank: int) -> dict:
    entry = {
        "id": model_for(provider),
        "provider": provider,
        "upstream": "gpt-4o-mini",
        "prices": [PRICE],
        "context_window": 128000,
        "max_output_tokens": 16384,
        "capabilities": ["chat", "stream", "tools", "json", "structured"],
        "quality_rank": rank,
        "speed_rank": rank,
    }
    if provider != "fallback":
        entry["fallbacks"] = [model_for("fallback")]
    return entry


def write_catalogue(path: Path, upstream_port: int) -> dict[str, str]:
    """Write the catalogue (JSON is YAML); return the environment that configures its keys."""
    providers = {
        name: {
            "name": name,
            "dialect": "openai",
            "base_url": f"http://127.0.0.1:{upstream_port}/{name}/v1",
        }
        for name in PROVIDERS
    }
    models = [model(name, rank) for rank, name in enumerate(PROVIDERS, start=1)]
    path.write_text(json.dumps({"providers": providers, "models": models}, indent=2))
    return {f"{name.upper()}_API_KEY": api_key(name) for name in PROVIDERS}
