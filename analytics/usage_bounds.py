"""Usage record values made to fit their columns, so one odd value never costs a tenant a row.

`bound_usage_values(values)` works over UsageRecord's fields generically (a column added later
passes through the same rules): text is cut to its column's max_length, whole numbers are held
within the column's range (PostgreSQL's, the strictest of our databases), decimals are rounded to
their places and held within their digits, booleans are booleans. A value that cannot be read at
all raises ValueError; the writer then sends the row to the dead-letter table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache, partial
from typing import Any

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from analytics.models import UsageRecord

logger = logging.getLogger(__name__)

REQUIRED = ("request_id", "organization_id", "endpoint", "status")
INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges


@cache
def usage_fields() -> dict[str, models.Field]:
    """UsageRecord's columns by attribute name (relations as `<name>_id`), without the id."""
    return {f.attname: f for f in UsageRecord._meta.concrete_fields if not f.primary_key}


def bound_usage_values(values: dict[str, Any]) -> dict[str, Any]:
    """The values, each made to fit its column; logs what had to change."""
    fitters = _fitters()
    if not values.keys() <= fitters.keys():  # no set is built when all are known
        unknown = values.keys() - fitters.keys()
        raise ValueError(f"Not UsageRecord fields: {', '.join(sorted(unknown))}")
    for required in REQUIRED:
        if values.get(required) in (None, ""):
            raise ValueError(f"A usage record needs {required}")
    bounded = {}
    for name, value in values.items():
        plain, low, high, fit, if_none = fitters[name]
        if type(value) is plain:  # most values already fit: kept as they are, without a call
            if plain is str:
                if len(value) <= high and "\x00" not in value:
                    bounded[name] = value
                    continue
            elif low <= value <= high:
                bounded[name] = value
                continue
        try:
            bounded[name] = if_none() if value is None else fit(value)
        except _OutOfBounds as bound:
            logger.warning(
                "usage record %.64s: %s did not fit its column and was bounded",
                values.get("request_id"),
                name,
            )
            bounded[name] = bound.value
    return bounded


class _OutOfBounds(Exception):
    def __init__(self, value: Any):
        self.value = value


# A column's fitting: values of type `plain` within `low`..`high` (their length, for text) are
# kept as they are, without a call; `fit` makes any other value fit; `if_none` is what None
# becomes.
Fitter = tuple[type | None, float, float, Callable[[Any], Any], Callable[[], Any]]
UNBOUNDED = float("inf")
NOT_PLAIN = (None, 0, 0)  # every value goes through `fit`


@cache
def _fitters() -> dict[str, Fitter]:
    """Each column's fitting, decided once, and what it takes for None (NULL, or its default
    fitted): every request's record goes through them twice."""
    return {name: _fitter(field) for name, field in usage_fields().items()}


def _fitter(field: models.Field) -> Fitter:
    (plain, low, high), fit = _fit_for(field)
    if field.null:
        return plain, low, high, fit, lambda: None
    return plain, low, high, fit, lambda: fit(field.get_default())


def _fit_for(field: models.Field) -> tuple[tuple[type | None, float, float], Callable]:
    """The values `fit` returns unchanged (type, low, high), and `fit`."""
    if isinstance(field, models.ForeignKey):
        return (int, -UNBOUNDED, UNBOUNDED), int
    if isinstance(field, models.BooleanField):
        return (bool, False, True), bool
    if isinstance(field, models.DecimalField):
        places = Decimal(1).scaleb(-field.decimal_places)
        # A whole number: SQLite keeps decimals as floats, and 9999999999.99999999 reads back
        # as 1e10.
        largest = Decimal(10) ** (field.max_digits - field.decimal_places) - 1
        return NOT_PLAIN, partial(_fit_decimal, field.name, places, largest)
    if isinstance(field, models.IntegerField):
        low, high = INTEGER_RANGES.get(field.get_internal_type(), (None, None))
        plain = (int, -UNBOUNDED if low is None else low, UNBOUNDED if high is None else high)
        return plain, partial(_fit_integer, low, high)
    if isinstance(field, models.DateTimeField):
        return NOT_PLAIN, partial(_fit_moment, field)
    if isinstance(field, models.CharField | models.TextField):
        return (str, 0, field.max_length or UNBOUNDED), partial(_fit_text, field.max_length)
    return NOT_PLAIN, field.to_python


def _fit_integer(low: int | None, high: int | None, value: Any) -> int:
    number = int(value)
    if low is not None and number < low:
        raise _OutOfBounds(low)
    if high is not None and number > high:
        raise _OutOfBounds(high)
    return number


def _fit_moment(field: models.DateTimeField, value: Any) -> Any:
    moment = field.to_python(value)
    if moment is None:
        raise ValueError(f"{field.name} is not a time")
    return moment


def _fit_text(max_length: int | None, value: Any) -> str:
    text = str(value).replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if max_length and len(text) > max_length:
        raise _OutOfBounds(text[:max_length])
    return text


def _fit_decimal(name: str, places: Decimal, largest: Decimal, value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"{name} is not a number") from error
    if not number.is_finite():
        raise ValueError(f"{name} is not a finite number")
    if abs(number) > largest:
        raise _OutOfBounds(largest.copy_sign(number))
    return number.quantize(places, rounding=ROUND_HALF_EVEN)
