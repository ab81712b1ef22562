"""The fallback token estimator."""

from __future__ import annotations

from llm.tokens import (
    TextTally,
    estimate_messages_tokens,
    estimate_tokens,
    estimate_usage,
    fill_unreported,
)


def test_empty_text_has_no_tokens() -> None:
    assert estimate_tokens("") == 0


def test_longer_text_has_more_tokens() -> None:
    assert estimate_tokens("a short line") < estimate_tokens("a short line " * 10)


def test_every_word_counts_at_least_one_token() -> None:
    assert estimate_tokens("a b c d e f g h") >= 8


def test_english_prose_lands_near_four_characters_per_token() -> None:
    text = "The quick brown fox jumps over the lazy dog near the riverbank. " * 20
    assert 0.8 * len(text) / 4 <= estimate_tokens(text) <= 1.2 * len(text) / 4


def test_messages_count_their_text_parts_and_tool_calls() -> None:
    plain = [{"role": "user", "content": "hello there"}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    with_call = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "a long query text"}'},
                }
            ],
        }
    ]

    assert estimate_messages_tokens(plain) == estimate_messages_tokens(parts)
    assert estimate_messages_tokens(with_call) > estimate_messages_tokens([])


def test_an_estimated_usage_says_it_is_estimated() -> None:
    usage = estimate_usage([{"role": "user", "content": "hi"}], "hello back")

    assert usage.estimated is True
    assert usage.output_tokens == estimate_tokens("hello back")


def test_a_tally_of_pieces_estimates_as_the_joined_text_does() -> None:
    # Pieces as streams cut them: mid-word, on spaces, newlines, empty, non-ASCII whitespace.
    pieces = ["Hel", "lo", " wor", "ld", "", " ", "\n", "a", "b c ", " d", "\u3000e", "f\t", "g"]
    for end in range(len(pieces) + 1):
        tally = TextTally()
        for piece in pieces[:end]:
            tally.add(piece)
        assert tally.tokens == estimate_tokens("".join(pieces[:end]))


def test_a_tally_of_many_one_word_pieces_counts_every_word() -> None:
    tally = TextTally()
    for _ in range(1000):
        tally.add(" tick")

    assert tally.tokens == estimate_tokens(" tick" * 1000) == 1250


def test_an_early_end_is_billed_from_the_tally_as_from_the_text() -> None:
    messages = [{"role": "user", "content": "hi"}]
    tally = TextTally()
    for piece in ("Once upon", " a time", " there was a gateway"):
        tally.add(piece)

    from_tally = fill_unreported(None, messages, tally)

    assert from_tally == fill_unreported(None, messages, "Once upon a time there was a gateway")
    assert from_tally.output_tokens == estimate_tokens("Once upon a time there was a gateway")
