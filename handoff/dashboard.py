"""The console dashboard's figures over a range of Beijing-time days: questions per day and channel,
the share answered / clarified / cited / not found / handed to staff, the most answered FAQs with
their ratings, the rating ratio, tickets opened / answered / answered late, and the median time to
reply in working days (handoff.sla.WorkCalendar). Every figure is a GROUP BY in the database (never
all rows in Python), with the local day computed by `china_day`, a SQL expression compiled for
SQLite (``date(x, '+8 hours')``) and PostgreSQL (``CAST(x + INTERVAL '8 hours' AS DATE)``). Also the
CSV export, whose text cells cannot start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Date, and_, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from handoff.models import Ticket
from handoff.sla import WorkCalendar
from handoff.tickets import OPEN_STATUSES
from knowledge.errors import InvalidInput
from knowledge.faqs import formula_safe
from knowledge.models import CHINA_TZ, Faq, QueryLog, to_db_time

OUTCOME_LABELS: Final = {
    "answer": "直接答复",
    "clarify": "提供选项",
    "passage": "引用政策原文",
    "none": "未找到",
    "handoff": "转人工留言",
}
CHANNEL_LABELS: Final = {"web": "网站", "wechat": "微信", "telegram": "Telegram", "memory": "测试"}
NOT_QUESTIONS: Final = ("command", "status")
MAX_DAYS: Final = 366
DEFAULT_DAYS: Final = 30


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


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def today_china() -> dt.date:
    return dt.datetime.now(CHINA_TZ).date()


def parse_range(
    start: str | None, end: str | None, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """The [start, end] days of a filter form; default the last 30 days up to today."""
    day = today or today_china()
    try:
        last = dt.date.fromisoformat(end) if end else day
        first = dt.date.fromisoformat(start) if start else last - dt.timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", f"bad dashboard range {start!r}..{end!r}") from None
    if first > last:
        raise InvalidInput("开始日期不能晚于结束日期", "dashboard range start after end")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"统计区间最长 {MAX_DAYS} 天", "dashboard range too long")
    return first, last


def _utc_midnight(day: dt.date) -> dt.datetime:
    return to_db_time(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))


@dataclass(frozen=True)
class TopFaq:
    faq_id: str
    question: str
    count: int
    useful: int
    useless: int


@dataclass(frozen=True)
class Dashboard:
    start: dt.date
    end: dt.date
    channels: tuple[str, ...]
    daily: tuple[tuple[dt.date, tuple[int, ...]], ...]  # per day: questions per channel (as `channels`)
    questions: int
    outcomes: tuple[tuple[str, int], ...]  # OUTCOME_LABELS order
    top_faqs: tuple[TopFaq, ...]
    answers: int  # questions answered directly
    useful: int
    useless: int
    tickets_opened: int
    tickets_answered: int
    tickets_late: int  # due in the range and answered after the due date, or still open past it
    tickets_open_overdue: int  # open now and past their due date (whenever opened)
    ticket_daily: tuple[tuple[dt.date, int, int], ...]  # day, opened, answered
    reply_days_median: float | None
    reply_days_p90: int | None
    replies_measured: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def rate(self, outcome: str) -> float:
        n = dict(self.outcomes).get(outcome, 0)
        return n / self.questions if self.questions else 0.0

    @property
    def rated(self) -> int:
        return self.useful + self.useless

    @property
    def useful_ratio(self) -> float | None:
        return self.useful / self.rated if self.rated else None

    @property
    def rated_share(self) -> float | None:
        return self.rated / self.answers if self.answers else None


def _weighted_quantile(pairs: list[tuple[int, int]], q: float) -> float | None:
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


def build_dashboard(
    sessions: sessionmaker[Session],
    calendar: WorkCalendar,
    start: dt.date,
    end: dt.date,
    *,
    top: int = 10,
    today: dt.date | None = None,
) -> Dashboard:
    lo, hi = _utc_midnight(start), _utc_midnight(end + dt.timedelta(days=1))
    with sessions() as s:
        q = _question_counts(s, lo, hi, top)
        t = _ticket_counts(s, lo, hi, start, end, today or today_china())

    channels = tuple(
        sorted(
            {c for _, c in q.per_day},
            key=lambda c: (-sum(v for (_, ch), v in q.per_day.items() if ch == c), c),
        )
    )
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    daily = tuple((d, tuple(q.per_day.get((d, c), 0) for c in channels)) for d in days)
    durations: dict[int, int] = {}
    for c_day, rp_day, cnt in t.reply_pairs:
        wd = max(0, calendar.working_days_between(_as_date(c_day), _as_date(rp_day)))
        durations[wd] = durations.get(wd, 0) + int(cnt)
    pairs = list(durations.items())
    p90 = _weighted_quantile(pairs, 0.9)
    return Dashboard(
        start=start,
        end=end,
        channels=channels,
        daily=daily,
        questions=sum(q.outcomes.values()),
        outcomes=tuple((k, q.outcomes.get(k, 0)) for k in OUTCOME_LABELS),
        top_faqs=q.top_faqs,
        answers=q.outcomes.get("answer", 0),
        useful=q.ratings.get("useful", 0),
        useless=q.ratings.get("useless", 0),
        tickets_opened=sum(t.opened.values()),
        tickets_answered=sum(t.answered.values()),
        tickets_late=t.late,
        tickets_open_overdue=t.open_overdue,
        ticket_daily=tuple((d, t.opened.get(d, 0), t.answered.get(d, 0)) for d in days),
        reply_days_median=_weighted_quantile(pairs, 0.5),
        reply_days_p90=int(p90) if p90 is not None else None,
        replies_measured=sum(durations.values()),
    )


@dataclass(frozen=True)
class _QuestionCounts:
    per_day: dict[tuple[dt.date, str], int]
    outcomes: dict[str, int]
    ratings: dict[str, int]
    top_faqs: tuple[TopFaq, ...]


def _question_counts(s: Session, lo: dt.datetime, hi: dt.datetime, top: int) -> _QuestionCounts:
    """The query log's figures: questions per (day, channel), per outcome, per rating, top FAQs."""
    in_range = and_(QueryLog.at >= lo, QueryLog.at < hi, QueryLog.outcome.not_in(NOT_QUESTIONS))
    day = china_day(QueryLog.at)
    per_day: dict[tuple[dt.date, str], int] = {}
    for d, channel, n in s.execute(
        select(day, QueryLog.channel, func.count()).where(in_range).group_by(day, QueryLog.channel)
    ):
        per_day[(_as_date(d), str(channel))] = int(n)
    outcomes = {
        str(o): int(n)
        for o, n in s.execute(
            select(QueryLog.outcome, func.count()).where(in_range).group_by(QueryLog.outcome)
        )
    }
    ratings = {
        str(r): int(n)
        for r, n in s.execute(
            select(QueryLog.rating, func.count())
            .where(in_range, QueryLog.rating.is_not(None))
            .group_by(QueryLog.rating)
        )
    }
    hits = func.count().label("hits")
    top_rows = s.execute(
        select(
            QueryLog.faq_id,
            hits,
            func.sum(case((QueryLog.rating == "useful", 1), else_=0)),
            func.sum(case((QueryLog.rating == "useless", 1), else_=0)),
        )
        .where(in_range, QueryLog.outcome == "answer", QueryLog.faq_id.is_not(None))
        .group_by(QueryLog.faq_id)
        .order_by(hits.desc(), QueryLog.faq_id)
        .limit(top)
    ).all()
    ids = [str(r[0]) for r in top_rows]
    titles = dict(s.execute(select(Faq.id, Faq.question).where(Faq.id.in_(ids))).all()) if ids else {}
    top_faqs = tuple(
        TopFaq(str(f), str(titles.get(str(f), "（已删除）")), int(c), int(u or 0), int(x or 0))
        for f, c, u, x in top_rows
    )
    return _QuestionCounts(per_day=per_day, outcomes=outcomes, ratings=ratings, top_faqs=top_faqs)


@dataclass(frozen=True)
class _TicketCounts:
    opened: dict[dt.date, int]
    answered: dict[dt.date, int]
    late: int
    open_overdue: int
    reply_pairs: list[Any]  # (opened day, replied day, count)


def _ticket_counts(
    s: Session, lo: dt.datetime, hi: dt.datetime, start: dt.date, end: dt.date, now_day: dt.date
) -> _TicketCounts:
    """The tickets' figures: opened and answered per day, late, open and overdue, reply-day pairs."""
    t_day = china_day(Ticket.created_at)
    opened = {
        _as_date(d): int(c)
        for d, c in s.execute(
            select(t_day, func.count()).where(Ticket.created_at >= lo, Ticket.created_at < hi).group_by(t_day)
        )
    }
    r_day = china_day(Ticket.replied_at)
    answered = {
        _as_date(d): int(c)
        for d, c in s.execute(
            select(r_day, func.count()).where(Ticket.replied_at >= lo, Ticket.replied_at < hi).group_by(r_day)
        )
    }
    late = s.execute(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.due_date >= start,
            Ticket.due_date <= end,
            or_(
                and_(
                    Ticket.replied_at.is_(None), Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < now_day
                ),
                and_(Ticket.replied_at.is_not(None), china_day(Ticket.replied_at) > Ticket.due_date),
            ),
        )
    ).scalar_one()
    open_overdue = s.execute(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < now_day)
    ).scalar_one()
    # Time to reply: one row per (opened day, replied day) pair, not per ticket.
    reply_pairs = list(
        s.execute(
            select(t_day, r_day, func.count())
            .where(Ticket.replied_at >= lo, Ticket.replied_at < hi)
            .group_by(t_day, r_day)
        ).all()
    )
    return _TicketCounts(
        opened=opened,
        answered=answered,
        late=int(late),
        open_overdue=int(open_overdue),
        reply_pairs=reply_pairs,
    )


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def dashboard_csv(d: Dashboard) -> Iterator[str]:
    """The dashboard as CSV lines (UTF-8 with BOM for Excel; sections separated by blank rows)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")

    def row(*cells: Any) -> str:
        buf.seek(0)
        buf.truncate()
        w.writerow([formula_safe(c) if isinstance(c, str) else c for c in cells])
        return buf.getvalue()

    yield "\ufeff" + row("统计区间", f"{d.start:%Y-%m-%d}", f"{d.end:%Y-%m-%d}")
    yield row()
    yield row("指标", "数值", "比例")
    yield row("提问总数", d.questions, "")
    for k, n in d.outcomes:
        yield row(OUTCOME_LABELS[k], n, _pct(d.rate(k)))
    yield row("评价“有用”", d.useful, _pct(d.useful_ratio))
    yield row("评价“没用”", d.useless, _pct(1 - d.useful_ratio if d.useful_ratio is not None else None))
    yield row("新增留言", d.tickets_opened, "")
    yield row("答复留言", d.tickets_answered, "")
    yield row("超期答复或超期未答复（到期日在区间内）", d.tickets_late, "")
    yield row("当前超期未办结", d.tickets_open_overdue, "")
    yield row("答复用时中位数（工作日）", "" if d.reply_days_median is None else d.reply_days_median, "")
    yield row("答复用时90%分位（工作日）", "" if d.reply_days_p90 is None else d.reply_days_p90, "")
    yield row()
    yield row("日期", *[CHANNEL_LABELS.get(c, c) for c in d.channels], "提问合计", "新增留言", "答复留言")
    tickets = {day: (o, a) for day, o, a in d.ticket_daily}
    for day, counts in d.daily:
        o, a = tickets.get(day, (0, 0))
        yield row(f"{day:%Y-%m-%d}", *counts, sum(counts), o, a)
    yield row()
    yield row("问答编号", "标准问题", "答复次数", "有用", "没用")
    for f in d.top_faqs:
        yield row(f.faq_id, f.question, f.count, f.useful, f.useless)


__all__ = [
    "CHANNEL_LABELS",
    "OUTCOME_LABELS",
    "Dashboard",
    "TopFaq",
    "build_dashboard",
    "china_day",
    "dashboard_csv",
    "parse_range",
    "today_china",
]
