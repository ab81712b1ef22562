"""SSE and NDJSON framing, and reading upstream error bodies."""

from __future__ import annotations

import httpx
import pytest

from llm.providers.errors import upstream_message
from llm.providers.http import join_url
from llm.providers.sse import Backlog, iter_lines, iter_ndjson, iter_sse, upstream_backlog
from tests.llm.fakes import chunked


def streamed(text: str, size: int = 7) -> httpx.Response:
    return httpx.Response(200, content=chunked(text.encode("utf-8"), size))


async def messages(text: str, size: int = 7) -> list[tuple[str, str]]:
    return [(m.event, m.data) async for m in iter_sse(streamed(text, size))]


async def test_sse_events_are_split_on_blank_lines_and_keep_their_names() -> None:
    text = 'event: ping\ndata: {"a": 1}\n\ndata: two\n\n'

    assert await messages(text) == [("ping", '{"a": 1}'), ("message", "two")]


async def test_sse_multi_line_data_is_joined_with_newlines() -> None:
    assert await messages("data: one\ndata: two\n\n") == [("message", "one\ntwo")]


async def test_sse_comments_and_unknown_fields_are_ignored() -> None:
    text = ": keep-alive\nid: 5\nretry: 100\ndata: x\n\n"

    assert await messages(text) == [("message", "x")]


async def test_sse_crlf_line_endings_are_understood() -> None:
    assert await messages("data: a\r\n\r\ndata: b\r\n\r\n", size=3) == [
        ("message", "a"),
        ("message", "b"),
    ]


async def test_sse_without_a_space_after_the_colon_is_accepted() -> None:
    assert await messages("data:[DONE]\n\n") == [("message", "[DONE]")]


async def test_a_final_sse_event_without_its_blank_line_is_still_delivered() -> None:
    assert await messages("data: last") == [("message", "last")]


async def test_ndjson_lines_are_parsed_one_object_each_across_chunks() -> None:
    response = streamed('{"a": 1}\n\n{"b": [2, 3]}\n', size=4)

    assert [row async for row in iter_ndjson(response)] == [{"a": 1}, {"b": [2, 3]}]


@pytest.mark.parametrize(
    ("body", "message", "kind"),
    [
        (
            {"error": {"message": "bad key", "type": "invalid_request_error"}},
            "bad key",
            "invalid_request_error",
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "Overloaded",
            "overloaded_error",
        ),
        (
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            "quota",
            "RESOURCE_EXHAUSTED",
        ),
        ({"error": "model not found"}, "model not found", None),
        ({"id": "x", "message": "invalid api token"}, "invalid api token", None),
        ({"detail": "Not Found"}, "Not Found", None),
        ("<html>502</html>", "<html>502</html>", None),
        (None, "(empty body)", None),
    ],
)
def test_the_upstream_error_message_is_found_in_each_providers_body_shape(
    body: object, message: str, kind: str | None
) -> None:
    assert upstream_message(body) == (message, kind)


def test_urls_join_without_doubled_or_missing_slashes() -> None:
    assert join_url("https://api.deepseek.com", "chat/completions") == (
        "https://api.deepseek.com/chat/completions"
    )
    assert join_url("https://api.openai.com/v1/", "/models") == "https://api.openai.com/v1/models"


async def test_the_backlog_counts_the_lines_received_and_not_yet_handed_on() -> None:
    backlog = Backlog()
    upstream_backlog.set(backlog)
    seen = []
    async for line in iter_lines(streamed("a\nb\nc\nd\ne", size=6)):  # "a\nb\nc\n", "d\ne"
        seen.append((line, backlog.lines))
    assert seen == [("a", 2), ("b", 1), ("c", 0), ("d", 0), ("e", 0)]
    assert backlog.ended


async def test_a_new_upstream_starts_a_fresh_backlog() -> None:
    backlog = Backlog(lines=3, ended=True)  # what a candidate that failed over left
    upstream_backlog.set(backlog)
    lines = iter_lines(streamed("a\nb\n", size=2))
    assert await anext(lines) == "a"
    assert (backlog.lines, backlog.ended) == (0, False)
