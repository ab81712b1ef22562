"""JSON bodies of the API's answers, encoded by orjson (several times faster than json.dumps on
every answer and every stream chunk).

orjson refuses what the standard library accepts in a few corners (a lone UTF-16 surrogate in
a string an upstream sent, integers beyond 64 bits, non-string keys, Decimal): those answers fall
back to json.dumps, so a body never fails to encode because of the faster encoder.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def encode_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value).encode()
