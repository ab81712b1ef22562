"""Number formats of the dashboard: money, shares, counts and latencies."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()


@register.filter
def usd(value) -> str:
    """Dollars: cents for large sums, four places below a dollar, eight below a cent."""
    if value in (None, ""):
        return "–"
    amount = Decimal(str(value))
    places = "0.01" if abs(amount) >= 1 else "0.0001" if abs(amount) >= Decimal("0.01") else None
    if amount == 0:
        return "$0.00"
    if places is None:
        return f"${amount.quantize(Decimal('0.00000001'), ROUND_HALF_UP).normalize():f}"
    return f"${amount.quantize(Decimal(places), ROUND_HALF_UP):,}"


@register.filter
def share(value) -> str:
    """A fraction as a percentage: 0.9731 -> 97.3%."""
    if value is None:
        return "–"
    return f"{float(value) * 100:.1f}%"


@register.filter
def count(value) -> str:
    """12345 -> 12,345; 2500000 -> 2.5M."""
    if value is None:
        return "–"
    value = int(value)
    if abs(value) >= 10_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value:,}"


@register.filter
def ms(value) -> str:
    if value is None:
        return "–"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


@register.filter
def status_badge(status: int) -> str:
    """CSS class of a status badge."""
    if status < 400:
        return "ok"
    return "warn" if status < 500 else "bad"
