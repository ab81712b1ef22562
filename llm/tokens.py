"""A rough token estimator, used only when a provider reports no usage.

Real tokenisers differ per model; roughly four characters per token holds well enough for
English text and code to keep billing and quotas honest when an upstream says nothing.
Every Usage built from here is marked estimated=True.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from llm.types import Usage

CHARS_PER_TOKEN = 4
# Role markers and separators the chat templates add around each message.
MESSAGE_OVERHEAD = 4
REPLY_PRIMER = 2


def estimate_tokens(text: str) -> int:
    """Tokens in a piece of text: about one per four characters, at least one per word."""
    if not text:
        return 0
    return max(len(text.split()), math.ceil(len(text) / CHARS_PER_TOKEN))


def message_text(message: dict[str, Any]) -> str:
    """The text a chat message carries: its content (string or text parts) plus tool calls."""
    pieces: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                pieces.append(part["text"])
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        pieces.append(str(function.get("name", "")))
        arguments = function.get("arguments", "")
        pieces.append(arguments if isinstance(arguments, str) else json.dumps(arguments))
    return " ".join(piece for piece in pieces if piece)


def estimate_messages_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """Prompt tokens for a list of OpenAI-shaped chat messages."""
    total = REPLY_PRIMER
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_tokens(message_text(message))
    return total


def estimate_usage(messages: Iterable[dict[str, Any]], output_text: str) -> Usage:
    """A whole-exchange estimate, flagged as such."""
    return Usage(
        input_tokens=estimate_messages_tokens(messages),
        output_tokens=estimate_tokens(output_text),
        estimated=True,
    )


def estimate_inputs_usage(inputs: Iterable[str]) -> Usage:
    """Embedding usage when the provider reports none."""
    return Usage(input_tokens=sum(estimate_tokens(text) for text in inputs), estimated=True)
