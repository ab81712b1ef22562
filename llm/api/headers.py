"""An answer's headers, set and read in bulk.

Django checks and encodes a header as it is set (`response[name] = value`: `_convert_to_charset`
twice), and reading the headers back walks its case-insensitive mapping name by name. An API
answer carries about fifteen of the gateway's own headers, and both walks cost more than the
rest of building the answer. Here a header whose name and value are ASCII without a line break
(every one the gateway makes) goes straight into the response's header store, as Django would
store it; any other takes Django's own way, with its refusal of line breaks and its MIME encoding
of what latin-1 cannot hold. Both functions read `ResponseHeaders._store` (lower-case name ->
(name, value)), Django's storage since 3.2: tests/api/test_headers.py pins what they rely on.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpResponseBase


def set_headers(response: HttpResponseBase, headers: Mapping[str, str]) -> None:
    """`response[name] = value` for each header, the same result at a fraction of the cost."""
    store = response.headers._store
    for name, value in headers.items():
        if (
            type(value) is str
            and value.isascii()
            and name.isascii()
            and "\n" not in value
            and "\r" not in value
            and "\n" not in name
            and "\r" not in name
        ):
            store[name.lower()] = (name, value)
        else:
            response[name] = value  # Django's checks and encoding


def header_list(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """The headers as ASGI sends them (names ASCII, values latin-1, as Django checked them)."""
    return [
        (name.encode("ascii"), value.encode("latin1"))
        for name, value in response.headers._store.values()
    ]
