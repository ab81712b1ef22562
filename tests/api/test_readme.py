"""The README's examples run as written against a live gateway set up like `make run` (the
shipped catalogue, the demo provider only).

Each `curl` in the chosen sections is parsed and sent; the `# -> …` comment after it is the
claim: a status code, or a JSON object whose top-level keys must all be in the answer.
Placeholders (`<access token>`, `<refresh token>`, `gw-…`) take the values the earlier answers
gave for them, in order. The Python blocks run with the same key."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("From nothing to an API key over HTTP", "The public API")
PLACEHOLDER = re.compile(r"<[a-z ]+>|gw-…")

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Example:
    command: str
    claim: str


@dataclass
class Blocks:
    shell: list[Example] = field(default_factory=list)
    python: list[str] = field(default_factory=list)


def section_text(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}\n")
    following = re.search(r"^## ", markdown[start + 3 :], re.M)
    return markdown[start : start + 3 + following.start()] if following else markdown[start:]


def read_blocks() -> Blocks:
    markdown, blocks = README.read_text(), Blocks()
    for title in SECTIONS:
        for language, body in re.findall(
            r"```(\w+)\n(.*?)```", section_text(markdown, title), re.S
        ):
            if language == "python":
                blocks.python.append(body)
            elif language == "sh":
                blocks.shell += parse_shell(body)
    return blocks


def parse_shell(body: str) -> list[Example]:
    examples, lines = [], body.replace("\\\n", " ").splitlines()
    for line in lines:
        if line.startswith("curl "):
            examples.append(Example(line, ""))
        elif line.startswith("# -> ") and examples and not examples[-1].claim:
            examples[-1].claim = line[5:].split("   ")[0].strip()
    return examples


def request_of(command: str, base_url: str) -> dict:
    """curl's arguments -> httpx.request arguments (only the flags the README uses)."""
    args = shlex.split(command)[1:]
    method, headers, data, url = None, {}, None, None
    while args:
        arg = args.pop(0)
        if arg == "-X":
            method = args.pop(0)
        elif arg == "-H":
            name, _, value = args.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = args.pop(0)
        elif arg == "-s":
            continue
        elif arg.startswith("-"):
            raise AssertionError(f"the README uses a curl flag this test does not know: {arg}")
        else:
            url = re.sub(r"^(https?://)?(localhost|127\.0\.0\.1):8000", base_url, arg)
    method = method or ("POST" if data is not None else "GET")
    return {"method": method, "url": url, "headers": headers, "content": data}


def top_level_keys(claim: str) -> list[str]:
    keys, depth = [], 0
    for match in re.finditer(r'[{}\[\]]|"([^"]*)"\s*:', claim):
        token = match.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif depth == 1:
            keys.append(match.group(1))
    return keys


def captures(claim: str) -> dict[str, str]:
    """{"access": "<access token>"} -> {"<access token>": "access"}; likewise "gw-…"."""
    return {
        placeholder: key for key, placeholder in re.findall(r'"(\w+)":\s*"(<[a-z ]+>|gw-…)"', claim)
    }


def fill(text: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        assert match.group(0) in values, f"README uses {match.group(0)} before any answer gave it"
        return values[match.group(0)]

    return PLACEHOLDER.sub(substitute, text)


def test_the_readme_has_examples_to_run():
    blocks = read_blocks()
    assert len(blocks.shell) >= 6 and blocks.python
    assert all(example.claim for example in blocks.shell), "every curl says what it returns"


def test_the_readme_examples_work_as_written(demo_gateway):
    blocks, values = read_blocks(), {}
    for example in blocks.shell:
        response = httpx.request(**request_of(fill(example.command, values), demo_gateway))
        if re.fullmatch(r"\d{3}", example.claim):
            assert response.status_code == int(example.claim), (example.command, response.text)
            continue
        assert response.is_success, (example.command, response.status_code, response.text)
        body = response.json()
        missing = [key for key in top_level_keys(example.claim) if key not in body]
        assert not missing, (example.command, missing, body)
        for placeholder, key in captures(example.claim).items():
            values[placeholder] = body[key]
    assert values["gw-…"].startswith("gw-")

    printed = io.StringIO()
    for code in blocks.python:
        code = code.replace("http://127.0.0.1:8000", demo_gateway)
        code = code.replace("gw-…", values["gw-…"])
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (our own README)
    # What the OpenAI SDK example prints: the demo's answer, and one vector per input.
    assert "[demo] You said: Hi" in printed.getvalue()
    assert "2 vectors" in printed.getvalue()
