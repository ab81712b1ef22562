"""The gateway's JSON codec: orjson, with the json module in the corners orjson refuses or reads
differently."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm.json_codec import decode_json, encode_json


def test_encodes_compact_utf8():
    assert encode_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize("value", [{"s": "\ud800"}, {"n": 2**70}, {1: "non-string key"}])
def test_what_orjson_refuses_is_still_encoded(value):
    assert json.loads(encode_json(value)) == json.loads(json.dumps(value))


def read_both(text):
    """(kind, value or error type) from the json module and from decode_json."""
    results = []
    for read in (json.loads, decode_json):
        try:
            value = read(text)
        except (ValueError, RecursionError) as error:
            results.append(
                (
                    "error",
                    type(error).__name__ if isinstance(error, RecursionError) else "ValueError",
                )
            )
        else:
            results.append(("value", json.dumps(value), repr(value)))
    return results


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890",  # orjson would read these three as floats
        "-9223372036854775809",
        '{"n": [18446744073709551616]}',
        "NaN",
        "[Infinity, -Infinity, 1E400]",
        '"\\ud800 lone"',
        b"\xef\xbb\xbf{}",  # a byte-order mark
        '{"a": 1}'.encode("utf-16"),
        '{"a": 1, "a": 2}',
        "[1, 2",
        b'"\xff"',
        "",
        "[" * 5000 + "]" * 5000,
        '{"phone": "12345678901234567890"}',  # digits in a string: the slow path, same value
    ],
)
def test_decoding_reads_what_the_json_module_reads(text):
    expected, got = read_both(text)
    assert got == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(value=json_values, as_bytes=st.booleans(), ascii_only=st.booleans())
def test_decoding_any_json_text_gives_the_json_modules_value(value, as_bytes, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    if as_bytes:
        text = text.encode("utf-8", "surrogatepass")
    expected, got = read_both(text)
    assert got == expected
