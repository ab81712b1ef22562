"""The gateway's JSON encoder: orjson, with the json module in the corners orjson refuses."""

from __future__ import annotations

import json

import pytest

from llm.json_codec import encode_json


def test_encodes_compact_utf8():
    assert encode_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize("value", [{"s": "\ud800"}, {"n": 2**70}, {1: "non-string key"}])
def test_what_orjson_refuses_is_still_encoded(value):
    assert json.loads(encode_json(value)) == json.loads(json.dumps(value))
