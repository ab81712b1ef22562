"""JSON bodies the gateway sends, encoded by orjson (several times faster than json.dumps): every
answer, every stream chunk and every upstream request body.

orjson refuses what the standard library accepts in a few corners (a lone UTF-16 surrogate in
a string an upstream sent, integers beyond 64 bits, non-string keys, Decimal): those bodies fall
back to json.dumps, so a body never fails to encode because of the faster encoder. Decoding stays
with the json module: orjson reads an integer beyond 64 bits as a float, which would change a
number a provider or client sent.
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
