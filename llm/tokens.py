"""Token counts we work out ourselves: a rough estimate when a provider reports no usage, and a
safe upper bound of a prompt for reservations and for bounding what an upstream reports.

Real tokenisers differ per model; roughly four characters per token holds well enough for
English text and code to keep billing and quotas honest when an upstream says nothing.
Every Usage built from here is marked estimated=True.
"""

from __future__ import annotations

import dataclasses
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


class TextTally:
    """What estimate_tokens needs of a text that arrives in pieces (a stream's output): its
    characters and words, counted as the pieces come, so a stream keeps two numbers instead of
    every piece it passed on. tally.tokens == estimate_tokens("".join(pieces))."""

    __slots__ = ("chars", "in_word", "words")

    def __init__(self) -> None:
        self.chars = 0
        self.words = 0
        self.in_word = False  # the text so far ends inside a word

    def add(self, piece: str) -> None:
        if not piece:
            return
        words = len(piece.split())
        if words and self.in_word and not piece[0].isspace():
            words -= 1  # the piece goes on with the last word of the previous one
        self.chars += len(piece)
        self.words += words
        self.in_word = not piece[-1].isspace()

    @property
    def tokens(self) -> int:
        return max(self.words, math.ceil(self.chars / CHARS_PER_TOKEN))


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


def _tokens_of(text: str | TextTally) -> int:
    return text.tokens if isinstance(text, TextTally) else estimate_tokens(text)


def estimate_usage(messages: Iterable[dict[str, Any]], output_text: str | TextTally) -> Usage:
    """A whole-exchange estimate, flagged as such."""
    return Usage(
        input_tokens=estimate_messages_tokens(messages),
        output_tokens=_tokens_of(output_text),
        estimated=True,
    )


def estimate_inputs_usage(inputs: Iterable[str]) -> Usage:
    """Embedding usage when the provider reports none."""
    return Usage(input_tokens=sum(estimate_tokens(text) for text in inputs), estimated=True)


def fill_unreported(
    reported: Usage | None, messages: Iterable[dict[str, Any]], produced: str | TextTally
) -> Usage:
    """A call that ended early (cut, disconnect): every class the provider reported, kept as is,
    and each number it had not reported yet estimated (input) or topped up to the text that
    arrived (output, reasoning and tool calls included), flagged as estimated."""
    usage = reported or Usage()
    parts = set(usage.estimated_parts)
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    if not input_tokens:
        input_tokens = estimate_messages_tokens(messages)
        parts.add("input")
    produced_tokens = _tokens_of(produced)
    if produced_tokens > output_tokens:
        output_tokens = produced_tokens
        parts.add("output")
    return dataclasses.replace(
        usage,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        estimated_parts=frozenset(parts),
        estimated=bool(parts),
    )


# --- upper bounds ---------------------------------------------------------------------------

# Every tokenizer we route to (byte-level BPE, SentencePiece with byte fallback) spends at least
# one byte of UTF-8 per token, so the byte count bounds the tokens from above. Chat templates add
# a few tokens per message, and an image costs at most a fixed number of tokens.
TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_PER_REQUEST = 16
IMAGE_TOKENS = 6_500  # above the largest per-image count the providers document


def utf8_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def prompt_upper_bound(
    messages: Iterable[dict[str, Any]], tools: Any = None, response_format: Any = None
) -> int:
    """At most this many prompt tokens, whatever the model's tokenizer: UTF-8 bytes of every
    message (content, tool calls, names) plus tool definitions and the schema, and template
    overhead. No tokenizer download needed."""
    total = TEMPLATE_TOKENS_PER_REQUEST
    for message in messages:
        total += TEMPLATE_TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                total += IMAGE_TOKENS if kind in ("image_url", "image", "input_audio") else 0
                if kind not in ("image_url", "image", "input_audio"):
                    total += utf8_bytes(part)
        elif content is not None:
            total += utf8_bytes(content)
        for key in ("tool_calls", "name", "tool_call_id"):
            if message.get(key):
                total += utf8_bytes(message[key])
    if tools:
        total += utf8_bytes(tools)
    if response_format:
        total += utf8_bytes(response_format)
    return total


def inputs_upper_bound(inputs: Iterable[str]) -> int:
    """Embedding inputs: UTF-8 bytes plus a couple of special tokens each."""
    return sum(utf8_bytes(text) + 2 for text in inputs)
