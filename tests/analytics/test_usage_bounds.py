"""A value a column keeps as it is skips its fitting: the result must be the fitting's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.usage_bounds import UNBOUNDED, _fitters, _OutOfBounds, bound_usage_values
from analytics.usage_writer import serialise_usage

REQUIRED = {"request_id": "r", "organization_id": 1, "endpoint": "e", "status": 200}


def edge_values(plain: type, low: float, high: float) -> list:
    if plain is bool:
        return [False, True]
    if plain is str:
        lengths = [1] if high == UNBOUNDED else [1, int(high), int(high) + 1]
        return [*("x" * n for n in lengths), "a\x00b", "\x00" * 3]
    ends = [int(end) + step for end in (low, high) if abs(end) != UNBOUNDED for step in (-1, 0, 1)]
    return [0, 1, 2**70, -(2**70), *ends]


def test_values_kept_as_they_are_are_what_the_fitting_returns():
    checked = 0
    for name, (plain, low, high, fit, _) in _fitters().items():
        if plain is None:
            continue
        for value in edge_values(plain, low, high):
            try:
                expected = fit(value)
            except _OutOfBounds as bound:
                expected = bound.value
            got = bound_usage_values({**REQUIRED, name: value})[name]
            assert (got, type(got)) == (expected, type(expected)), (name, value)
            checked += 1
    assert checked > 100


def test_a_time_is_queued_the_same_as_a_datetime_or_as_its_iso_text():
    now = datetime.now(UTC)
    for moment in (now, now.replace(microsecond=0) - timedelta(days=400)):  # whole seconds too
        as_text = serialise_usage({**REQUIRED, "created_at": moment.isoformat()})
        assert serialise_usage({**REQUIRED, "created_at": moment}) == as_text
