"""Dates, durations and credit amounts as every page, e-mail and admin screen shows them.

One place, so "2 Dec 2026, 05:50 UTC" and "12,500 credits" read the same everywhere
(decision 061).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import formats, timezone

_UNITS = (
    (timedelta(days=365), "year"),
    (timedelta(days=30), "month"),
    (timedelta(days=7), "week"),
    (timedelta(days=1), "day"),
    (timedelta(hours=1), "hour"),
    (timedelta(minutes=1), "minute"),
)


def format_datetime(value: datetime | None, *, empty: str = "never") -> str:
    """Return the date and time in the site's time zone, with the zone: "2 Dec 2026, 05:50 UTC"."""
    if value is None:
        return empty
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")


def format_relative(value: datetime | None, *, now: datetime | None = None) -> str:
    """Return how long ago (or how soon) the moment is: "3 minutes ago", "in 2 hours"."""
    if value is None:
        return ""
    now = now or timezone.now()
    delta = now - value
    future = delta < timedelta(0)
    delta = abs(delta)
    if delta < timedelta(minutes=1):
        return "in less than a minute" if future else "just now"
    for unit, name in _UNITS:
        if delta >= unit:
            count = int(delta / unit)
            words = f"{count} {name}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    raise AssertionError("unreachable: a minute or more always matches a unit")


def format_credits(value: int | None) -> str:
    """Return a credit amount with thousands separators: "12,500"."""
    if value is None:
        return "-"
    return f"{int(value):,}"
