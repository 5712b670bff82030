"""The reported window of the weekly gaps report: this module owns `Period` (local China dates and
the naive-UTC instants that select QueryLog rows), ISO weeks such as 2026-W47 (Monday to Sunday,
China time), the rolling last seven days, and the local day of a logged instant.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ, to_db_time, utcnow

_WEEK_RE = re.compile(r"^\s*(\d{4})\s*-?\s*[Ww]\s*(\d{1,2})\s*$")


@dataclass(frozen=True)
class Period:
    """The reported window: local (China) dates [start_day, end_day] and the naive-UTC instants
    [start, end) that select QueryLog rows."""

    label: str  # 2026-W47, or 20261117-20261123 for a rolling window
    start: dt.datetime
    end: dt.datetime
    start_day: dt.date
    end_day: dt.date

    @property
    def days(self) -> list[dt.date]:
        n = (self.end_day - self.start_day).days + 1
        return [self.start_day + dt.timedelta(days=i) for i in range(n)]

    def describe(self) -> str:
        return f"{self.start_day:%Y-%m-%d} 至 {self.end_day:%Y-%m-%d}"


def local_day(at_utc_naive: dt.datetime) -> dt.date:
    return at_utc_naive.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ).date()


def _local_midnight_utc(day: dt.date) -> dt.datetime:
    return to_db_time(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))


def parse_week(week: str) -> Period:
    """An ISO week such as 2026-W47 (Monday to Sunday, China time)."""
    m = _WEEK_RE.match(week or "")
    if not m:
        raise InvalidInput(f"周的格式应为 2026-W47：{week}", f"bad ISO week {week!r}")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        monday = dt.date.fromisocalendar(year, num, 1)
    except ValueError:
        raise InvalidInput(f"{year} 年没有第 {num} 周", f"no ISO week {year}-W{num}") from None
    sunday = monday + dt.timedelta(days=6)
    return Period(
        f"{year}-W{num:02d}",
        _local_midnight_utc(monday),
        _local_midnight_utc(sunday + dt.timedelta(days=1)),
        monday,
        sunday,
    )


def last_seven_days(now: dt.datetime | None = None) -> Period:
    """The 7 days up to `now` (naive UTC or aware), labelled by their local dates."""
    end = to_db_time(now) if now is not None else utcnow()
    start = end - dt.timedelta(days=7)
    first, last = local_day(start), local_day(end - dt.timedelta(microseconds=1))
    return Period(f"{first:%Y%m%d}-{last:%Y%m%d}", start, end, first, last)


def resolve_period(week: str | None = None, now: dt.datetime | None = None) -> Period:
    return parse_week(week) if week else last_seven_days(now)
