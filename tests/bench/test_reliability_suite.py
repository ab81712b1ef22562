"""The reliability suite's own parts: the fake upstream refuses what OpenAI refuses and faults as
told, and the figures are computed as the report says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

SUITE = Path(__file__).resolve().parents[2] / "bench" / "reliability"
sys.path.insert(0, str(SUITE))

import fake_upstream  # noqa: E402 - the suite's modules import each other by plain name
import ledger  # noqa: E402
import matrix  # noqa: E402
from catalogue import api_key, write_catalogue  # noqa: E402
from load import Outcome  # noqa: E402

CHAT = "/faulty_5xx/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def upstream():
    fake_upstream.reset()
    transport = httpx.ASGITransport(app=fake_upstream.app)
    headers = {"Authorization": f"Bearer {api_key('faulty_5xx')}"}
    return httpx.AsyncClient(transport=transport, base_url="http://fake", headers=headers)


async def test_fake_refuses_a_wrong_key_and_a_missing_model(upstream):
    wrong = await upstream.post(CHAT, json=BODY, headers={"Authorization": "Bearer sk-other"})
    no_model = await upstream.post(CHAT, json={"messages": BODY["messages"]})
    bad_role = await upstream.post(CHAT, json={**BODY, "messages": [{"role": "robot"}]})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert (no_model.status_code, no_model.json()["error"]["param"]) == (400, "model")
    assert (bad_role.status_code, bad_role.json()["error"]["param"]) == (400, "messages[0].role")


async def test_fake_streams_usage_only_when_asked(upstream):
    plain = await upstream.post(CHAT, json={**BODY, "stream": True})
    options = {"stream": True, "stream_options": {"include_usage": True}}
    with_usage = await upstream.post(CHAT, json={**BODY, **options})
    assert plain.text.endswith("data: [DONE]\n\n")
    assert '"prompt_tokens"' not in plain.text
    assert '"prompt_tokens": 12' in with_usage.text


async def test_fake_faults_as_told_and_counts_calls(upstream):
    await upstream.post("/_control", json={"faulty_5xx": {"mode": "429", "retry_after": 7}})
    limited = await upstream.post(CHAT, json=BODY)
    await upstream.post("/_control", json={"faulty_5xx": {"mode": "truncate"}})
    cut = await upstream.post(CHAT, json=BODY)
    calls = (await upstream.get("/_stats")).json()
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    with pytest.raises(ValueError):
        json.loads(cut.text)
    assert len(calls["faulty_5xx"]) == 2
    assert calls["primary"] == []


def test_catalogue_gives_every_provider_a_key_and_a_fallback(tmp_path):
    env = write_catalogue(tmp_path / "models.json", 21900)
    catalogue = json.loads((tmp_path / "models.json").read_text())
    assert env["FAULTY_429_API_KEY"] == "sk-rel-faulty_429"
    assert all(
        model.get("fallbacks") == ["rel-chat-backup"]
        for model in catalogue["models"]
        if model["provider"] != "fallback"
    )


def test_a_row_is_owed_for_every_admitted_request():
    owed = [Outcome("a", status=s) for s in (200, 429, 400, 502, 504)]
    not_owed = [Outcome("b", status=s) for s in (401, 500, 503, None)]
    assert all(ledger.owes_row(o) for o in owed)
    assert not any(ledger.owes_row(o) for o in not_owed)


def test_recovery_counts_from_the_fault_end_to_the_last_unbroken_run_of_good_answers():
    def at(started: float, status: int | None) -> Outcome:
        return Outcome("x", status=status, started=started)

    outcomes = [at(9, 500), at(10.5, 200), at(11, 500), at(12.5, 200), at(13, 429), at(14, 200)]
    assert matrix.recovery_seconds(outcomes, fault_end=10) == 2.5
    assert matrix.recovery_seconds([*outcomes, at(15, 503)], fault_end=10) is None
