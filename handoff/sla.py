"""Due dates in working days (工作日) under China's official holidays and make-up workdays (调休上班).

The source of truth is the admin-editable `holiday` table (filled from the State Council notice,
a CSV, or by hand), which overrides the `chinese_calendar` package day by day; for a year that
neither knows (the package stops at 2026, the next year's notice arrives around November), days
are computed with weekends only and every result touching that year carries a Chinese warning,
which is also logged once per year per process. Table rows are cached in memory and reloaded
after `cache_seconds`, so `is_workday` stays cheap on hot paths (queue views, reminders).
A (re)load opens its own session: callers compute due dates before their write transaction opens,
never inside it (on SQLite the second connection would wait for the first one's write lock until
the busy timeout).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import chinese_calendar
from chinese_calendar import constants as cc_constants
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Holiday, HolidayYear
from knowledge.errors import InvalidInput

log = logging.getLogger(__name__)

Kind = Literal["holiday", "workday"]
KINDS: tuple[Kind, ...] = ("holiday", "workday")
MAX_WORKING_DAYS = 3660  # ten years: anything larger is a typo, not a deadline
_ONE_DAY = dt.timedelta(days=1)

# Years the chinese_calendar package has data for (its own range check, reproduced).
_PKG_HOLIDAYS: dict[dt.date, str] = cast(dict[dt.date, str], cc_constants.holidays)
PACKAGE_YEARS: frozenset[int] = frozenset(range(min(_PKG_HOLIDAYS).year, max(_PKG_HOLIDAYS).year + 1))

_warned_years: set[int] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class DueDate:
    day: dt.date
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class HolidayDay:
    """One row of the holiday table, detached from the session."""

    day: dt.date
    kind: str
    name: str
    source: str
    created_at: dt.datetime
    created_by: str


@dataclass(frozen=True)
class ImportedHolidays:
    years: tuple[int, ...]
    holidays: tuple[dt.date, ...]
    workdays: tuple[dt.date, ...]
    names: dict[dt.date, str]


def year_warning_text(year: int) -> str:
    return f"{year}年节假日安排尚未录入，期限按周末计算，请管理员导入国务院办公厅通知"


def _as_date(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _check_kind(kind: str) -> Kind:
    aliases: dict[str, Kind] = {
        "holiday": "holiday",
        "休": "holiday",
        "放假": "holiday",
        "假": "holiday",
        "休息": "holiday",
        "workday": "workday",
        "班": "workday",
        "上班": "workday",
        "调休上班": "workday",
        "工作日": "workday",
    }
    found = aliases.get(kind.strip().lower())
    if found is None:
        raise InvalidInput(
            f"日期类型“{kind}”无效，应为 holiday（放假）或 workday（上班）",
            f"invalid holiday kind {kind!r}",
        )
    return found


class WorkCalendar:
    """Working-day arithmetic over the holiday table, chinese_calendar and the weekend rule."""

    def __init__(self, sessions: sessionmaker[Session] | None = None, *, cache_seconds: float = 60.0) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._days: dict[dt.date, bool] = {}  # day -> is workday
        self._imported_years: frozenset[int] = frozenset()
        self._loaded_at: float | None = None

    # --- cache ---------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[dict[dt.date, bool], frozenset[int]]:
        if self._sessions is None:
            return self._days, self._imported_years
        now = time.monotonic()
        loaded = self._loaded_at
        if loaded is not None and now - loaded < self._cache_seconds:
            return self._days, self._imported_years
        with self._lock:
            if self._loaded_at is None or time.monotonic() - self._loaded_at >= self._cache_seconds:
                with self._sessions() as session:
                    rows = session.execute(select(Holiday.day, Holiday.kind)).all()
                    years = session.execute(select(HolidayYear.year)).scalars().all()
                self._days = {day: kind == "workday" for day, kind in rows}
                self._imported_years = frozenset(years)
                self._loaded_at = time.monotonic()
            return self._days, self._imported_years

    def invalidate(self) -> None:
        """Drop the cached rows; the next lookup reads the table again."""
        with self._lock:
            self._loaded_at = None

    def _require_db(self) -> sessionmaker[Session]:
        if self._sessions is None:
            raise InvalidInput("节假日表未配置数据库，无法修改", "WorkCalendar has no sessionmaker")
        return self._sessions

    # --- queries -------------------------------------------------------------------------------

    def is_workday(self, d: dt.date) -> bool:
        d = _as_date(d)
        days, _ = self._snapshot()
        override = days.get(d)
        if override is not None:
            return override
        if d.year in PACKAGE_YEARS:
            return bool(chinese_calendar.is_workday(d))
        return d.weekday() < 5

    def known_years(self) -> set[int]:
        """Years with a complete arrangement: imported into the table or known to the package."""
        _, imported = self._snapshot()
        return set(PACKAGE_YEARS) | set(imported)

    def year_warning(self, year: int) -> str | None:
        _, imported = self._snapshot()
        if year in PACKAGE_YEARS or year in imported:
            return None
        return year_warning_text(year)

    def _warnings(self, first: dt.date, last: dt.date) -> tuple[str, ...]:
        lo, hi = min(first, last), max(first, last)
        out: list[str] = []
        for year in range(lo.year, hi.year + 1):
            text = self.year_warning(year)
            if text is None:
                continue
            out.append(text)
            with _warned_lock:
                first_time = year not in _warned_years
                _warned_years.add(year)
            if first_time:
                log.warning(
                    "holiday arrangement for %d is unknown; counting weekends only until an admin "
                    "imports the State Council notice",
                    year,
                )
        return tuple(out)

    def next_workday(self, d: dt.date) -> dt.date:
        """The first working day strictly after `d`."""
        d = d + _ONE_DAY
        while not self.is_workday(d):
            d += _ONE_DAY
        return d

    def add_working_days(self, start: dt.datetime | dt.date, n: int) -> DueDate:
        """The n-th working day after `start` (day 1 = the first working day after the start date).

        `n == 0` gives the start date itself if it is a working day, else the next working day.
        A datetime is taken at its date (pass local China time).
        """
        if n < 0 or n > MAX_WORKING_DAYS:
            raise InvalidInput(
                f"工作日天数应在 0 到 {MAX_WORKING_DAYS} 之间", f"working days out of range: {n}"
            )
        begin = _as_date(start)
        if n == 0:
            day = begin if self.is_workday(begin) else self.next_workday(begin)
        else:
            day = begin
            for _ in range(n):
                day = self.next_workday(day)
        return DueDate(day=day, warnings=self._warnings(begin, day))

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after `start` up to and including `end`; negative if `end` is before `start`."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        d = start + _ONE_DAY
        while d <= end:
            if self.is_workday(d):
                count += 1
            d += _ONE_DAY
        return count

    def warnings_for(self, start: dt.date, end: dt.date) -> tuple[str, ...]:
        """Warnings for every year between the two dates whose arrangement is unknown."""
        return self._warnings(_as_date(start), _as_date(end))

    # --- administration ------------------------------------------------------------------------

    def list_days(self, year: int) -> list[HolidayDay]:
        sessions = self._require_db()
        lo, hi = dt.date(year, 1, 1), dt.date(year, 12, 31)
        with sessions() as session:
            rows = session.execute(
                select(Holiday).where(Holiday.day >= lo, Holiday.day <= hi).order_by(Holiday.day)
            ).scalars()
            return [HolidayDay(r.day, r.kind, r.name, r.source, r.created_at, r.created_by) for r in rows]

    def set_day(self, d: dt.date, kind: str, name: str = "", *, by: str) -> None:
        """Mark one day as holiday or workday (insert or replace), e.g. a local extra holiday."""
        sessions = self._require_db()
        checked = _check_kind(kind)
        day = _as_date(d)
        with sessions() as session, session.begin():
            row = session.get(Holiday, day)
            if row is None:
                session.add(
                    Holiday(day=day, kind=checked, name=name.strip()[:50], source="manual", created_by=by)
                )
            else:
                row.kind, row.name, row.source, row.created_by = checked, name.strip()[:50], "manual", by
                row.created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        log.info("holiday table: %s set to %s (%s) by %s", day, checked, name, by)
        self.invalidate()

    def delete_day(self, d: dt.date, *, by: str) -> bool:
        """Remove a day's row (the package or weekend rule applies again); False if there was none."""
        sessions = self._require_db()
        day = _as_date(d)
        with sessions() as session, session.begin():
            row = session.get(Holiday, day)
            removed = row is not None
            if row is not None:
                session.delete(row)
        self.invalidate()
        if removed:
            log.info("holiday table: %s removed by %s", day, by)
        return removed

    def import_notice(self, text: str, *, year: int | None = None, by: str) -> ImportedHolidays:
        """Parse the State Council notice and replace that year's rows atomically."""
        target, entries = parse_notice(text, year=year)
        return self._replace(entries, years={target}, source="notice", by=by)

    def import_csv(self, path_or_text: str | Path, *, by: str) -> ImportedHolidays:
        """Import "date,kind,name" rows (header optional); replaces every year the file covers."""
        entries = parse_csv(_read_text(path_or_text))
        return self._replace(entries, years={d.year for d in entries}, source="csv", by=by)

    def _replace(
        self, entries: dict[dt.date, tuple[Kind, str]], *, years: set[int], source: str, by: str
    ) -> ImportedHolidays:
        sessions = self._require_db()
        if not entries:
            raise InvalidInput("没有识别到任何放假或上班日期", "holiday import: no dates found")
        with sessions() as session, session.begin():
            for year in sorted(years):
                session.execute(
                    delete(Holiday).where(
                        Holiday.day >= dt.date(year, 1, 1), Holiday.day <= dt.date(year, 12, 31)
                    )
                )
                session.execute(delete(HolidayYear).where(HolidayYear.year == year))
            # Days outside the replaced years (e.g. 2025-12-31 in the 2026 notice) are upserted.
            stray = [d for d in entries if d.year not in years]
            if stray:
                session.execute(delete(Holiday).where(Holiday.day.in_(stray)))
            for day, (kind, name) in sorted(entries.items()):
                session.add(Holiday(day=day, kind=kind, name=name[:50], source=source, created_by=by))
            for year in sorted(years):
                in_year = [k for d, (k, _) in entries.items() if d.year == year]
                session.add(
                    HolidayYear(
                        year=year,
                        source=source,
                        imported_by=by,
                        holidays=in_year.count("holiday"),
                        workdays=in_year.count("workday"),
                    )
                )
        self.invalidate()
        holidays = tuple(sorted(d for d, (k, _) in entries.items() if k == "holiday"))
        workdays = tuple(sorted(d for d, (k, _) in entries.items() if k == "workday"))
        log.info(
            "holiday table: %s import for %s by %s: %d holidays, %d workdays",
            source,
            sorted(years),
            by,
            len(holidays),
            len(workdays),
        )
        return ImportedHolidays(
            years=tuple(sorted(years)),
            holidays=holidays,
            workdays=workdays,
            names={d: name for d, (_, name) in entries.items()},
        )


# --- parsing -----------------------------------------------------------------------------------

_CN_NUMERALS = "一二三四五六七八九十"
_SECTION = re.compile(rf"(?:^|\n|。)\s*[{_CN_NUMERALS}]+、\s*([^：:\n。]{{1,20}})[：:]")
_TITLE_YEAR = re.compile(r"关于\s*(\d{4})\s*年")
_PAREN = re.compile(r"[（(]([^）)]*)[）)]")
_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(?:(\d{1,2})\s*月\s*)?(\d{1,2})\s*日")
_TOTAL = re.compile(r"共\s*(\d+)\s*天")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAY_HINT = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")


def _bad(text: str, log_text: str) -> InvalidInput:
    return InvalidInput(f"节假日通知无法解析：{text}", f"holiday notice: {log_text}")


def _dates_in(clause: str, year: int, section: str) -> list[tuple[dt.date, str]]:
    """Dates in one clause with the punctuation that precedes each, checking weekday hints."""
    out: list[tuple[dt.date, str]] = []
    month: int | None = None
    cur_year = year
    pos = 0
    for m in _DATE.finditer(clause):
        if m.group(1):
            cur_year = int(m.group(1))
        if m.group(2):
            new_month = int(m.group(2))
            # "12月31日至1月2日" without explicit years crosses into the next year.
            if month is not None and new_month < month and not m.group(1):
                cur_year += 1
            month = new_month
        if month is None:
            raise _bad(f"{section}中的“{m.group(0)}”缺少月份", f"date without month in {section!r}")
        try:
            day = dt.date(cur_year, month, int(m.group(3)))
        except ValueError:
            raise _bad(f"{section}中的日期“{m.group(0)}”不存在", f"invalid date in {section!r}") from None
        between = clause[pos : m.start()]
        pos = m.end()
        # A parenthesis right after the date may name the weekday: check it against the calendar.
        after = clause[m.end() :]
        paren = re.match(r"\s*[（(]([^）)]*)[）)]", after)
        if paren:
            hint = _WEEKDAY_HINT.search(paren.group(1))
            if hint and _WEEKDAYS[hint.group(1)] != day.weekday():
                raise _bad(
                    f"{section}中{day.month}月{day.day}日写的是周{hint.group(1)}，"
                    f"但{day.year}年该日不是，请核对年份或日期",
                    f"weekday mismatch for {day} in {section!r}",
                )
            pos = m.end() + paren.end()
        out.append((day, between))
    return out


def parse_notice(text: str, *, year: int | None = None) -> tuple[int, dict[dt.date, tuple[Kind, str]]]:
    """Parse a 国务院办公厅关于YYYY年部分节假日安排的通知 into {day: (kind, holiday name)}.

    Each numbered section ("一、元旦：...") gives a 放假 range ("1月1日（周四）至3日（周六）放假调休，
    共3天") and optionally the make-up workdays ("1月4日（周日）上班"). The day count (共N天) and
    the weekday hints are checked, so a notice pasted for the wrong year is refused.
    """
    text = text.replace("\r\n", "\n").replace("\u3000", " ")
    if year is None:
        found = _TITLE_YEAR.search(text)
        if found is None:
            raise InvalidInput(
                "无法从通知中识别年份，请指定年份", "holiday notice: no year given or found in the title"
            )
        year = int(found.group(1))
    if not 2000 <= year <= 2200:
        raise InvalidInput(f"年份 {year} 无效", f"holiday notice: year {year} out of range")
    heads = list(_SECTION.finditer(text))
    if not heads:
        raise _bad("没有找到“一、元旦：……”这样的条目", "no numbered sections")
    entries: dict[dt.date, tuple[Kind, str]] = {}
    for i, head in enumerate(heads):
        name = head.group(1).strip()
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end]
        # Stop at the closing paragraph (节假日期间，各地区、各部门要…) if it follows the last section.
        body = re.split(r"\n\s*\n|\n\s*(?:节假日期间|各地区|特此通知)", body)[0]
        holidays: list[dt.date] = []
        workdays: list[dt.date] = []
        for sentence in re.split(r"[。；;\n]", body):
            if "放假" in sentence:
                clause = sentence.split("放假")[0]
                dates = _dates_in(clause, year, name)
                if not dates:
                    raise _bad(f"{name}没有放假日期", f"no holiday dates in {name!r}")
                j = 0
                while j < len(dates):
                    first = dates[j][0]
                    if j + 1 < len(dates) and "至" in dates[j + 1][1]:
                        last = dates[j + 1][0]
                        if last < first:
                            raise _bad(f"{name}的日期范围颠倒", f"reversed range in {name!r}")
                        holidays.extend(first + _ONE_DAY * k for k in range((last - first).days + 1))
                        j += 2
                    else:
                        holidays.append(first)
                        j += 1
                total = _TOTAL.search(sentence)
                if total and int(total.group(1)) != len(set(holidays)):
                    raise _bad(
                        f"{name}写明共{total.group(1)}天，但日期范围是{len(set(holidays))}天",
                        f"day count mismatch in {name!r}",
                    )
            elif "上班" in sentence:
                clause = sentence.split("上班")[0]
                workdays.extend(d for d, _ in _dates_in(clause, year, name))
        if not holidays:
            raise _bad(f"{name}没有放假日期", f"no holiday dates in {name!r}")
        for d in holidays:
            entries[d] = ("holiday", name)
        for d in workdays:
            if entries.get(d, ("workday", ""))[0] == "holiday":
                raise _bad(f"{d.isoformat()}既是放假又是上班", f"{d} both holiday and workday")
            entries[d] = ("workday", name)
    return year, entries


def _read_text(path_or_text: str | Path) -> str:
    if isinstance(path_or_text, Path):
        return path_or_text.read_text(encoding="utf-8-sig")
    if "\n" not in path_or_text and "," not in path_or_text and Path(path_or_text).is_file():
        return Path(path_or_text).read_text(encoding="utf-8-sig")
    return path_or_text.lstrip("\ufeff")


def _parse_iso(value: str, line_no: int) -> dt.date:
    value = value.strip().replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})日", value)
    try:
        if m is None:
            raise ValueError(value)
        parts = [int(g) for g in m.groups() if g is not None]
        return dt.date(parts[0], parts[1], parts[2])
    except ValueError:
        raise InvalidInput(
            f"第{line_no}行的日期“{value}”无效，应为 2026-01-01 格式",
            f"csv line {line_no}: bad date {value!r}",
        ) from None


def parse_csv(text: str) -> dict[dt.date, tuple[Kind, str]]:
    """Rows "date,kind,name" (kind: holiday/workday or 放假/上班); a header line is skipped."""
    entries: dict[dt.date, tuple[Kind, str]] = {}
    rows: Iterable[list[str]] = csv.reader(io.StringIO(text))
    for line_no, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if line_no == 1 and cells[0].lower() in ("date", "day", "日期"):
            continue
        if len(cells) < 2:
            raise InvalidInput(
                f"第{line_no}行应为“日期,类型,名称”", f"csv line {line_no}: expected date,kind,name"
            )
        day = _parse_iso(cells[0], line_no)
        try:
            kind = _check_kind(cells[1])
        except InvalidInput as exc:
            raise InvalidInput(
                f"第{line_no}行：{exc.user_message}", f"csv line {line_no}: {exc.log_message}"
            ) from None
        if day in entries and entries[day][0] != kind:
            raise InvalidInput(
                f"第{line_no}行：{day.isoformat()}重复且类型冲突", f"csv line {line_no}: conflicting {day}"
            )
        entries[day] = (kind, cells[2] if len(cells) > 2 else "")
    return entries
