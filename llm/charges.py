"""What one upstream answer is billed: its usage, bounded to what the request could produce,
at the price row chosen when the attempt was dispatched (priced once, here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from llm.catalog import ModelEntry
from llm.costs import compute_cost, request_options
from llm.prices import PriceRow
from llm.tokens import inputs_upper_bound, prompt_upper_bound
from llm.types import ChatRequest, Usage


@dataclass(frozen=True)
class UsageBound:
    """The most one upstream call can produce: its prompt's upper bound (UTF-8 bytes), the
    tool-use prompt the model may add (its context window), and the output cap sent."""

    prompt: int
    output: int
    tool_prompt: int

    @classmethod
    def for_chat(cls, model: ModelEntry, request: ChatRequest) -> UsageBound:
        prompt = min(
            prompt_upper_bound(request.messages, request.tools, request.response_format),
            model.context_window,
        )
        cap = request.max_tokens or model.max_output_tokens or model.context_window
        return cls(prompt=prompt, output=cap, tool_prompt=model.context_window)

    @classmethod
    def for_inputs(cls, model: ModelEntry, inputs: list[str]) -> UsageBound:
        prompt = min(inputs_upper_bound(inputs), model.context_window * max(len(inputs), 1))
        return cls(prompt=prompt, output=0, tool_prompt=0)


# The classes bound_usage cuts, read in one step.
BOUNDED_CLASSES = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "tool_use_prompt_tokens",
    "billed_input_units",
    "billed_output_units",
)
_bounded_classes_of = attrgetter(*BOUNDED_CLASSES)


def bound_usage(usage: Usage, bound: UsageBound) -> Usage:
    """usage with every class cut to what the request could have produced."""
    prompt = min(max(usage.input_tokens, 0), bound.prompt)
    output = min(max(usage.output_tokens, 0), bound.output)
    cached = min(max(usage.cached_input_tokens, 0), prompt)
    write_1h = min(max(usage.cache_write_1h_tokens, 0), prompt - cached)
    write_5m = min(max(usage.cache_write_5m_tokens, 0), prompt - cached - write_1h)

    def units(value: int | None, most: int) -> int | None:
        return None if value is None else min(max(value, 0), most)

    bounded = (
        prompt,
        output,
        cached,
        write_5m,
        write_1h,
        min(max(usage.reasoning_tokens, 0), output),
        min(max(usage.tool_use_prompt_tokens, 0), bound.tool_prompt),
        units(usage.billed_input_units, bound.prompt + bound.tool_prompt),
        units(usage.billed_output_units, bound.output),
    )
    if bounded == _bounded_classes_of(usage):
        return usage  # within its bound already (the usual case); frozen, so it can be shared
    return dataclasses.replace(usage, **dict(zip(BOUNDED_CLASSES, bounded, strict=True)))


@dataclass(frozen=True)
class Charge:
    """One paid upstream answer: bounded usage at the price row chosen when it was dispatched."""

    model: str  # the gateway's model id
    price: PriceRow
    usage: Usage  # what is billed
    reported: Usage  # as the provider reported it; differs from usage when it was bounded
    options: frozenset[str] = frozenset()
    cost: Decimal = Decimal(0)

    @property
    def is_anomalous(self) -> bool:
        return self.usage != self.reported


def charge_for(
    model: ModelEntry,
    price: PriceRow,
    reported: Usage,
    bound: UsageBound,
    request: ChatRequest | None = None,
) -> Charge:
    usage = bound_usage(reported, bound)
    options = request_options(request)
    return Charge(
        model=model.id,
        price=price,
        usage=usage,
        reported=reported,
        options=options,
        cost=compute_cost(price, usage, options),
    )
