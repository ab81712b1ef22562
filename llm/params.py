"""Parameter rules: what a provider (or one of its models) does with each request parameter.

The rules are data in models_config.yaml (`params:` on a provider, overridden per model). For each
OpenAI chat-completions parameter a rule says one of:

- accept   the provider takes it (natively, or its dialect translates it);
- rename   sent under another name (`max_tokens` -> `max_completion_tokens`,
           `seed` -> `random_seed`);
- drop     not sent, and said so in X-Gateway-Params-Dropped (`stream_options` where usage comes
           anyway, `user` where the provider has no such field);
- refuse   the candidate cannot honour the request: routing skips it, and when no candidate is
           left the gateway answers 400 naming the parameter and the model.

A rule may hold only for some values (`only: [1]`, `max: 1`) or only when another parameter is
absent (`not_with: temperature`); otherwise its `otherwise` action applies. A parameter a provider
does not list follows its `"*"` rule (refuse, in the shipped catalogue: an unknown parameter is
never forwarded to a provider that would answer 400 or 422 for it).

Pure functions of plain values: routing and failover call them, nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm.types import ChatRequest

ACTIONS = ("accept", "rename", "drop", "refuse")
# The request parameters rules talk about: OpenAI's names, plus messages[].name.
PARAMS = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    "verbosity",
    "service_tier",
    "store",
    "metadata",
    "prediction",
    "modalities",
    "stream_options",
    "messages[].name",
)
_ORDER = {name: i for i, name in enumerate(PARAMS)}  # decisions name parameters in this order
_REQUEST_FIELDS = ("max_tokens", "temperature", "top_p", "stop", "seed", "user", "tools")
_MORE_FIELDS = ("tool_choice", "response_format")


@dataclass(frozen=True)
class Rule:
    action: str = "accept"
    to: str | None = None  # the provider's name, for rename
    only: tuple[Any, ...] | None = None  # the rule holds for these values only
    max: float | None = None  # ... or up to this value
    not_with: str | None = None  # ... or when this other parameter is absent
    otherwise: str = "refuse"
    why: str = ""  # said in the 400 or the dropped header

    def action_for(self, value: Any, present: Mapping[str, Any]) -> str:
        holds = (
            (self.only is None or value in self.only)
            and (self.max is None or (_is_number(value) and value <= self.max))
            and (self.not_with is None or self.not_with not in present)
        )
        return self.action if holds else self.otherwise


ACCEPT = Rule()


@dataclass(frozen=True)
class ParamRules:
    rules: Mapping[str, Rule] = field(default_factory=dict)
    default: Rule = ACCEPT  # for parameters the rules do not name ("*")

    def rule(self, param: str) -> Rule:
        return self.rules.get(param, self.default)


ACCEPT_ALL = ParamRules()


@dataclass(frozen=True)
class Decision:
    """What one candidate does with one request."""

    renamed: Mapping[str, str] = field(default_factory=dict)
    dropped: Mapping[str, str] = field(default_factory=dict)  # param -> why
    refused: tuple[str, str] | None = None  # (param, why)

    def dropped_text(self) -> str:
        """For X-Gateway-Params-Dropped; stream_options is the gateway's own ask, not said."""
        return ", ".join(
            f"{p} ({why})" if why else p for p, why in self.dropped.items() if p != "stream_options"
        )


def parse_rule(spec: Any) -> Rule:
    """A rule from the YAML: "accept" | "drop" | "refuse" | {rename: x} | {action, only, ...}."""
    if isinstance(spec, str):
        return Rule(action=spec)
    spec = dict(spec)
    if "rename" in spec:
        spec["action"], spec["to"] = "rename", spec.pop("rename")
    if "only" in spec:
        spec["only"] = tuple(spec["only"])
    return Rule(**spec)


def parse_rules(spec: Mapping[str, Any] | None, base: ParamRules | None = None) -> ParamRules:
    """A provider's rules (base None), or a model's overrides on top of its provider's."""
    base = base or ACCEPT_ALL
    if not spec:
        return base
    rules = dict(base.rules)
    default = base.default
    for name, value in spec.items():
        if name == "*":
            default = parse_rule(value)
        else:
            rules[name] = parse_rule(value)
    return ParamRules(rules=rules, default=default)


def present_params(request: ChatRequest) -> dict[str, Any]:
    """The parameters a request carries, by their OpenAI names."""
    values: dict[str, Any] = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    values.update({name: getattr(request, name) for name in _MORE_FIELDS})
    values.update(request.extra)
    if request.stream:
        values["stream_options"] = {"include_usage": True}  # the gateway always wants usage
    if any(m.get("name") for m in request.messages if m.get("role") != "tool"):
        values["messages[].name"] = True
    return {name: value for name, value in values.items() if value is not None}


def decide(
    rules: ParamRules,
    request: ChatRequest,
    model: str = "",
    present: dict[str, Any] | None = None,
) -> Decision:
    """What `rules` do with the request's parameters; `present` is present_params(request), when
    the caller already has it (routing checks every candidate against one request)."""
    present = present_params(request) if present is None else present
    renamed: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for param in sorted(present, key=lambda p: (_ORDER.get(p, len(_ORDER)), p)):
        value = present[param]
        rule = rules.rule(param)
        action = rule.action_for(value, present)
        if action == "refuse":
            why = rule.why or f"{model or 'the model'} does not support '{param}'"
            return Decision(refused=(param, why))
        if action == "drop":
            dropped[param] = rule.why
        elif action == "rename" and rule.to:
            renamed[param] = rule.to
    return Decision(renamed=renamed, dropped=dropped)


def apply(decision: Decision, request: ChatRequest, **changed: Any) -> ChatRequest:
    """The request as this candidate receives it: dropped parameters gone, renames noted, and
    the `changed` fields (its model id, say) set in the same copy."""
    changes: dict[str, Any] = {"wire_names": dict(decision.renamed)}
    extra = dict(request.extra)
    for param in decision.dropped:
        if param == "stream_options":
            changes["stream_usage"] = False
        elif param == "messages[].name":
            changes["messages"] = [_without_name(m) for m in request.messages]
        elif param in _REQUEST_FIELDS or param in _MORE_FIELDS:
            changes[param] = None
        else:
            extra.pop(param, None)
    changes["extra"] = extra
    return dataclasses.replace(request, **changes | changed)  # one copy, `changed` set last


def _without_name(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("role") == "tool" or "name" not in message:
        return message
    return {k: v for k, v in message.items() if k != "name"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
