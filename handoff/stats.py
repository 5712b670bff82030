"""Ticket handling statistics (办理情况统计), the one computation behind the public page /board/stats
and the ticket figures of the console dashboard: for the tickets received in a range of Beijing-time
days, per department and per month, how many were received, answered (a first reply exists),
answered within the time limit (first reply on or before the due date), are unanswered past their
due date, the working days from receipt to the first reply (official holidays and make-up workdays
counted, handoff.sla.WorkCalendar), the citizens' ratings (满意 / 基本满意 / 不满意) and how many were
reopened (by staff, or by a 不满意 rating). Figures count tickets by the month they were received,
as of now. Two GROUP BY queries (never all rows in Python); no text and no personal data leaves
this module. `china_day` (the Beijing day of a timestamp, in SQL) lives here too. Also the month-range parsing of the public page and the flat CSV table both views export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Date, and_, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from handoff.models import Ticket, TicketEvent
from handoff.sla import WorkCalendar
from handoff.tickets import OPEN_STATUSES, RATINGS
from handoff.tickets.records import MERGED
from knowledge.errors import InvalidInput
from knowledge.faqs import formula_safe
from knowledge.models import CHINA_TZ, to_db_time

MAX_MONTHS: Final = 24
DEFAULT_MONTHS: Final = 12
FIRST_YEAR: Final = 2000
ALL: Final = "全部"
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")

COLUMNS: Final = (
    "收到留言",
    "已答复",
    "按时答复",
    "超期未答复",
    "按时答复率",
    "平均答复用时（工作日）",
    "最长答复用时（工作日）",
    *RATINGS,
    "满意率",
    "重新办理",
)


@dataclass(frozen=True)
class Figures:
    """The figures of one group of tickets (a department in a month, a month, a department, all)."""

    received: int = 0
    answered: int = 0
    on_time: int = 0
    overdue_open: int = 0  # no reply yet, still open and past the due date
    ratings: tuple[int, int, int] = (0, 0, 0)  # RATINGS order: 满意, 基本满意, 不满意
    reopened: int = 0
    durations: tuple[tuple[int, int], ...] = ()  # (working days to the first reply, tickets), sorted

    def __add__(self, other: Figures) -> Figures:
        hist: dict[int, int] = dict(self.durations)
        for days, n in other.durations:
            hist[days] = hist.get(days, 0) + n
        return Figures(
            received=self.received + other.received,
            answered=self.answered + other.answered,
            on_time=self.on_time + other.on_time,
            overdue_open=self.overdue_open + other.overdue_open,
            ratings=(
                self.ratings[0] + other.ratings[0],
                self.ratings[1] + other.ratings[1],
                self.ratings[2] + other.ratings[2],
            ),
            reopened=self.reopened + other.reopened,
            durations=tuple(sorted(hist.items())),
        )

    @property
    def due(self) -> int:
        """Tickets that had to be answered by now: answered, or unanswered past the due date."""
        return self.answered + self.overdue_open

    @property
    def late(self) -> int:
        """Answered after the due date, or still unanswered past it."""
        return self.due - self.on_time

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None

    @property
    def measured(self) -> int:
        return sum(n for _, n in self.durations)

    @property
    def avg_days(self) -> float | None:
        n = self.measured
        return sum(d * c for d, c in self.durations) / n if n else None

    @property
    def max_days(self) -> int | None:
        return self.durations[-1][0] if self.durations else None

    @property
    def median_days(self) -> float | None:
        return weighted_quantile(self.durations, 0.5)

    @property
    def p90_days(self) -> int | None:
        q = weighted_quantile(self.durations, 0.9)
        return None if q is None else int(q)

    @property
    def rated(self) -> int:
        return sum(self.ratings)

    @property
    def satisfaction_rate(self) -> float | None:
        """(满意 + 基本满意) / rated, as in 办理统计."""
        return (self.ratings[0] + self.ratings[1]) / self.rated if self.rated else None

    def cells(self) -> tuple[str, ...]:
        """The figures as shown in tables and the CSV, in COLUMNS order ("—" when undefined)."""
        return (
            str(self.received),
            str(self.answered),
            str(self.on_time),
            str(self.overdue_open),
            pct(self.on_time_rate),
            days_text(self.avg_days),
            "—" if self.max_days is None else str(self.max_days),
            *(str(n) for n in self.ratings),
            pct(self.satisfaction_rate),
            str(self.reopened),
        )


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def days_text(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def weighted_quantile(pairs: Sequence[tuple[int, int]], q: float) -> float | None:
    """Quantile of values given as (value, count); the median averages the two middle values."""
    total = sum(n for _, n in pairs)
    if not total:
        return None
    ordered = sorted(pairs)

    def nth(k: int) -> int:  # 0-based k-th smallest
        seen = 0
        for v, n in ordered:
            seen += n
            if k < seen:
                return v
        return ordered[-1][0]

    if q == 0.5:
        return nth((total - 1) // 2) / 2 + nth(total // 2) / 2
    return float(nth(min(total - 1, int(q * total))))


@dataclass(frozen=True)
class TicketStats:
    """The figures of the tickets received from `start` to `end` (Beijing days), as of `today`."""

    start: dt.date
    end: dt.date
    today: dt.date
    months: tuple[str, ...]  # "YYYY-MM" of every month the range touches
    departments: tuple[str, ...]  # those that received tickets, most first
    cells: dict[tuple[str, str], Figures] = field(default_factory=dict)  # (department, month)
    daily_received: tuple[tuple[dt.date, int], ...] = ()  # every day of the range

    def cell(self, department: str, month: str) -> Figures:
        return self.cells.get((department, month), Figures())

    def month(self, month: str) -> Figures:
        return _sum(f for (_, m), f in self.cells.items() if m == month)

    def department(self, department: str) -> Figures:
        return _sum(f for (d, _), f in self.cells.items() if d == department)

    @property
    def total(self) -> Figures:
        return _sum(self.cells.values())

    @property
    def by_month(self) -> tuple[tuple[str, Figures], ...]:
        return tuple((m, self.month(m)) for m in self.months)

    @property
    def by_department(self) -> tuple[tuple[str, Figures], ...]:
        return tuple((d, self.department(d)) for d in self.departments)


def _sum(items: Iterable[Figures]) -> Figures:
    total = Figures()
    for f in items:
        total = total + f
    return total


def month_key(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def months_between(start: dt.date, end: dt.date) -> tuple[str, ...]:
    out: list[str] = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return tuple(out)


def _parse_month(value: str, what: str) -> tuple[int, int]:
    found = _MONTH.match(value)
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < FIRST_YEAR:
        raise InvalidInput(
            f"{what}格式应为“年-月”，如 2026-05（{FIRST_YEAR}年以后）", f"bad stats month {value[:20]!r}"
        )
    return int(found.group(1)), int(found.group(2))


def parse_months(first: str | None, last: str | None, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """The [first day, last day] of a month range "YYYY-MM".."YYYY-MM"; default the last 12 months
    up to the current one. At most MAX_MONTHS months, none after the current month."""
    now = (today.year, today.month)
    y2, m2 = _parse_month(last, "截止月份") if last and last.strip() else now
    if first and first.strip():
        y1, m1 = _parse_month(first, "起始月份")
    else:
        k = y2 * 12 + m2 - 1 - (DEFAULT_MONTHS - 1)
        y1, m1 = k // 12, k % 12 + 1
    if (y2, m2) > now:
        raise InvalidInput("截止月份不能晚于本月", f"stats month {y2}-{m2} in the future")
    if (y1, m1) > (y2, m2):
        raise InvalidInput("起始月份不能晚于截止月份", "stats months reversed")
    if (y2 * 12 + m2) - (y1 * 12 + m1) + 1 > MAX_MONTHS:
        raise InvalidInput(f"统计区间最长 {MAX_MONTHS} 个月，请缩短区间", "stats range too long")
    nxt = dt.date(y2 + 1, 1, 1) if m2 == 12 else dt.date(y2, m2 + 1, 1)
    return dt.date(y1, m1, 1), nxt - dt.timedelta(days=1)


class china_day(FunctionElement[dt.date]):  # noqa: N801  (a SQL function name)
    """The Beijing-time calendar day of a naive-UTC timestamp column, computed in the database."""

    type = Date()
    name = "china_day"
    inherit_cache = True


@compiles(china_day, "sqlite")
def _china_day_sqlite(element: china_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(china_day, "postgresql")
def _china_day_pg(element: china_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) + INTERVAL '8 hours' AS DATE)"


def _utc_midnight(day: dt.date) -> dt.datetime:
    return to_db_time(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def ticket_stats(
    sessions: sessionmaker[Session], calendar: WorkCalendar, start: dt.date, end: dt.date, *, today: dt.date
) -> TicketStats:
    """The figures of the tickets received from `start` to `end` (inclusive, Beijing days)."""
    lo, hi = _utc_midnight(start), _utc_midnight(end + dt.timedelta(days=1))
    mine = aliased(Ticket)  # the events of the tickets in the range only
    events = (
        select(TicketEvent.ticket_id.label("tid"), TicketEvent.at, TicketEvent.action)
        .join(mine, mine.id == TicketEvent.ticket_id)
        .where(mine.created_at >= lo, mine.created_at < hi, TicketEvent.action.in_(("reply", "reopen")))
        .subquery()
    )
    first = (
        select(events.c.tid, func.min(events.c.at).label("at"))
        .where(events.c.action == "reply")
        .group_by(events.c.tid)
        .subquery()
    )
    reopen = select(events.c.tid).where(events.c.action == "reopen").distinct().subquery()
    answered_at = func.coalesce(first.c.at, Ticket.replied_at)  # tickets made before events were kept
    source = Ticket.__table__.outerjoin(first, first.c.tid == Ticket.id).outerjoin(
        reopen, reopen.c.tid == Ticket.id
    )
    c_day, a_day = china_day(Ticket.created_at), china_day(answered_at)
    # A merged duplicate (已合并) is the kept ticket's request again: counted once, as the kept one.
    in_range = and_(Ticket.created_at >= lo, Ticket.created_at < hi, Ticket.status != MERGED)

    def count_if(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    with sessions() as s:
        groups = s.execute(
            select(
                Ticket.department,
                c_day,
                func.count(),
                count_if(answered_at.is_not(None)),
                count_if(and_(answered_at.is_not(None), a_day <= Ticket.due_date)),
                count_if(
                    and_(answered_at.is_(None), Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < today)
                ),
                *[count_if(Ticket.rating == r) for r in RATINGS],
                count_if(or_(reopen.c.tid.is_not(None), Ticket.rating == RATINGS[2])),
            )
            .select_from(source)
            .where(in_range)
            .group_by(Ticket.department, c_day)
        ).all()
        # Time to the first reply: one row per (department, received day, replied day), not per ticket.
        pairs = s.execute(
            select(Ticket.department, c_day, a_day, func.count())
            .select_from(source)
            .where(in_range, answered_at.is_not(None))
            .group_by(Ticket.department, c_day, a_day)
        ).all()
    # The calendar may read the holiday table: only after the session is closed.
    cells: dict[tuple[str, str], Figures] = {}
    per_day: dict[dt.date, int] = {}
    for dept, day, n, answered, on_time, overdue, r1, r2, r3, reopened in groups:
        d = _as_date(day)
        per_day[d] = per_day.get(d, 0) + int(n)
        key = (str(dept), month_key(d))
        cells[key] = cells.get(key, Figures()) + Figures(
            received=int(n),
            answered=int(answered or 0),
            on_time=int(on_time or 0),
            overdue_open=int(overdue or 0),
            ratings=(int(r1 or 0), int(r2 or 0), int(r3 or 0)),
            reopened=int(reopened or 0),
        )
    for dept, c, a, n in pairs:
        wd = max(0, calendar.working_days_between(_as_date(c), _as_date(a)))
        key = (str(dept), month_key(_as_date(c)))
        cells[key] = cells[key] + Figures(durations=((wd, int(n)),))
    received: dict[str, int] = {}
    for (dept, _), f in cells.items():
        received[dept] = received.get(dept, 0) + f.received
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return TicketStats(
        start=start,
        end=end,
        today=today,
        months=months_between(start, end),
        departments=tuple(sorted(received, key=lambda d: (-received[d], d))),
        cells=cells,
        daily_received=tuple((d, per_day.get(d, 0)) for d in days),
    )


def stats_rows(st: TicketStats) -> Iterator[tuple[str, ...]]:
    """The flat table both CSV exports carry: 部门, 月份, then COLUMNS. First the total (全部, 全部),
    then every month (全部, month), every department (department, 全部), and each department's
    months (department, month); no text and no personal data."""
    yield ("部门", "月份", *COLUMNS)
    period = f"{st.months[0]}至{st.months[-1]}" if len(st.months) > 1 else st.months[0]
    yield (ALL, period, *st.total.cells())
    for m, f in st.by_month:
        yield (ALL, m, *f.cells())
    for d, f in st.by_department:
        yield (d, period, *f.cells())
        for m in st.months:
            yield (d, m, *st.cell(d, m).cells())


def stats_csv(st: TicketStats) -> Iterator[str]:
    """The flat table as CSV lines: UTF-8 with a BOM (Excel), text cells never start a formula."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for i, cells in enumerate(stats_rows(st)):
        buf.seek(0)
        buf.truncate()
        w.writerow([formula_safe(c) for c in cells])
        yield ("\ufeff" if i == 0 else "") + buf.getvalue()


__all__ = [
    "ALL",
    "COLUMNS",
    "MAX_MONTHS",
    "Figures",
    "TicketStats",
    "china_day",
    "days_text",
    "months_between",
    "parse_months",
    "pct",
    "stats_csv",
    "stats_rows",
    "ticket_stats",
    "weighted_quantile",
]
