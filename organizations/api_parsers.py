"""The management API's JSON parser: DRF's, refusing with 400 what it would otherwise crash on."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """Nesting past GATEWAY_MAX_JSON_DEPTH (or the interpreter's recursion limit) and lone UTF-16
    surrogates ("\\ud800": parsed, but no database, e-mail or log can store it) are a 400."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        check_depth(data, settings.GATEWAY_MAX_JSON_DEPTH)
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a lone UTF-16 surrogate is not text.") from None
        return data


def check_depth(data: Any, limit: int) -> None:
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels.")
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
