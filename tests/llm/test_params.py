"""Parameter rules: parsing, deciding and applying, on plain values."""

from __future__ import annotations

import pytest

from llm import params
from llm.types import ChatRequest


def ask(**fields) -> ChatRequest:
    return ChatRequest(**({"model": "m", "messages": [{"role": "user", "content": "hi"}]} | fields))


RULES = params.parse_rules(
    {
        "*": "refuse",
        "max_tokens": {"rename": "max_completion_tokens"},
        "temperature": {"only": [1], "otherwise": "drop", "why": "fixed sampling"},
        "top_p": {"not_with": "temperature", "otherwise": "drop"},
        "seed": {"rename": "random_seed"},
        "user": "drop",
        "stream_options": "drop",
        "messages[].name": "drop",
        "presence_penalty": {"max": 1},
        "tools": "accept",
    }
)


def test_renames_are_noted_and_sent_under_the_providers_name() -> None:
    decision = params.decide(RULES, ask(max_tokens=10, seed=3))
    assert decision.renamed == {"max_tokens": "max_completion_tokens", "seed": "random_seed"}
    assert params.apply(decision, ask(max_tokens=10, seed=3)).wire_names == decision.renamed


def test_a_value_outside_only_takes_the_otherwise_action() -> None:
    assert params.decide(RULES, ask(temperature=1)).dropped == {}
    decision = params.decide(RULES, ask(temperature=0.0))
    assert decision.dropped == {"temperature": "fixed sampling"}
    assert params.apply(decision, ask(temperature=0.0)).temperature is None


def test_not_with_holds_only_without_the_other_parameter() -> None:
    assert "top_p" not in params.decide(RULES, ask(top_p=0.5)).dropped
    assert "top_p" in params.decide(RULES, ask(top_p=0.5, temperature=1)).dropped


def test_max_refuses_above_it_and_unlisted_parameters_follow_the_star_rule() -> None:
    assert params.decide(RULES, ask(extra={"presence_penalty": 0.5})).refused is None
    assert params.decide(RULES, ask(extra={"presence_penalty": 1.5}), "m").refused == (
        "presence_penalty",
        "m does not support 'presence_penalty'",
    )
    assert params.decide(RULES, ask(extra={"logprobs": True})).refused[0] == "logprobs"


def test_dropping_removes_extra_fields_message_names_and_the_stream_usage_ask() -> None:
    request = ask(
        messages=[
            {"role": "user", "name": "ada", "content": "hi"},
            {"role": "tool", "name": "get_weather", "tool_call_id": "c1", "content": "18C"},
        ],
        stream=True,
        user="u1",
    )
    decision = params.decide(RULES, request)
    sent = params.apply(decision, request)

    assert set(decision.dropped) == {"user", "stream_options", "messages[].name"}
    assert sent.user is None and sent.stream_usage is False
    assert "name" not in sent.messages[0]
    assert sent.messages[1]["name"] == "get_weather"  # a tool result keeps its function name
    assert decision.dropped_text() == "user, messages[].name"  # the gateway's own ask not said


def test_refusals_name_parameters_in_a_stable_order() -> None:
    request = ask(extra={"top_logprobs": 2, "logprobs": True}, stop=["x"])
    assert params.decide(RULES, request).refused[0] == "stop"


def test_without_rules_everything_is_accepted() -> None:
    assert params.decide(params.ACCEPT_ALL, ask(extra={"logprobs": True})) == params.Decision()


@pytest.mark.parametrize("spec", ["accept", "drop", "refuse"])
def test_a_rule_may_be_one_word(spec: str) -> None:
    assert params.parse_rule(spec).action == spec


def test_model_rules_override_their_providers() -> None:
    model = params.parse_rules({"tools": "refuse"}, RULES)
    assert model.rule("tools").action == "refuse"
    assert model.rule("seed").to == "random_seed"
    assert model.default.action == "refuse"


def test_fields_changed_by_the_caller_are_set_in_the_same_copy_and_win() -> None:
    request = ask(user="u1", temperature=0.0)
    decision = params.decide(RULES, request)
    sent = params.apply(decision, request, model="upstream-id", stream=True)

    assert (sent.model, sent.stream) == ("upstream-id", True)
    assert sent.user is None and sent.temperature is None  # the dropped ones still go
    assert (request.model, request.user) == ("m", "u1")  # the client's request is not changed
    assert params.apply(decision, request, user="kept").user == "kept"
