"""The period a usage page or export covers: whole UTC days, ``from`` and ``to`` inclusive."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

MAX_PERIOD_DAYS = 366
# Far enough either way for any real usage, and inside what a UTC datetime can hold (the
# instant after 9999-12-31 cannot be written, so that date gave a 500).
EARLIEST_DATE = datetime.date(2000, 1, 1)
LATEST_DATE = datetime.date(2999, 12, 31)
DATE_FORMAT_HELP = "YYYY-MM-DD, for example 2026-11-01"


class PeriodError(ValueError):
    """The requested period cannot be read; the message says what to send instead."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from ``first`` to ``last``, both included."""

    first: datetime.date
    last: datetime.date

    @property
    def start(self) -> datetime.datetime:
        """The first instant of the period: UTC midnight of its first day."""
        return datetime.datetime.combine(self.first, datetime.time.min, tzinfo=datetime.UTC)

    @property
    def end(self) -> datetime.datetime:
        """The first instant after the period: UTC midnight after its last day (exclusive)."""
        return self.start + datetime.timedelta(days=self.days)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> Iterator[datetime.date]:
        for offset in range(self.days):
            yield self.first + datetime.timedelta(days=offset)

    def as_query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"


@dataclass(frozen=True, slots=True)
class QuickPick:
    label: str
    period: Period


def _month_of(day: datetime.date) -> Period:
    first = day.replace(day=1)
    next_month = (first + datetime.timedelta(days=32)).replace(day=1)
    return Period(first, next_month - datetime.timedelta(days=1))


def today_utc() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def period_this_month(*, today: datetime.date) -> Period:
    return _month_of(today)


def period_quick_picks(*, today: datetime.date) -> list[QuickPick]:
    """Return the periods offered as one-click choices."""
    this_month = _month_of(today)
    last_month = _month_of(this_month.first - datetime.timedelta(days=1))
    last_30_days = Period(today - datetime.timedelta(days=29), today)
    return [
        QuickPick("This month", this_month),
        QuickPick("Last month", last_month),
        QuickPick("Last 30 days", last_30_days),
    ]


def _date(name: str, raw: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        # The raw value is not echoed: it is only ever a date or a typo, but nothing typed
        # into a query string needs to be reflected back to be understood.
        raise PeriodError(f"'{name}' is not a date: write it as {DATE_FORMAT_HELP}.") from None


def period_from_query(params: Mapping[str, str], *, today: datetime.date) -> Period:
    """Return the period of ``?from=&to=``; this calendar month (UTC) when neither is given."""
    raw_from = (params.get("from") or "").strip()
    raw_to = (params.get("to") or "").strip()
    if not raw_from and not raw_to:
        return period_this_month(today=today)
    if not raw_from or not raw_to:
        raise PeriodError(
            "Give both 'from' and 'to' (" + DATE_FORMAT_HELP + "), or neither for this month."
        )
    first, last = _date("from", raw_from), _date("to", raw_to)
    for name, day in (("from", first), ("to", last)):
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise PeriodError(
                f"'{name}' must be between {EARLIEST_DATE.isoformat()} and "
                f"{LATEST_DATE.isoformat()}."
            )
    if first > last:
        raise PeriodError(
            f"The period starts after it ends ({first.isoformat()} is after "
            f"{last.isoformat()}): swap 'from' and 'to'."
        )
    period = Period(first, last)
    if period.days > MAX_PERIOD_DAYS:
        raise PeriodError(
            f"A period is at most {MAX_PERIOD_DAYS} days long; this one has {period.days}. "
            "Pick a shorter one, or export several periods."
        )
    return period
