"""The console dashboard's figures over a range of Beijing-time days: questions per day and channel,
the share answered / clarified / cited / not found / handed to staff, the most answered FAQs with
their ratings, the rating ratio, and the ticket figures of `handoff.stats` (the same computation as
the public /board/stats: received, answered, on time, working days to reply, ratings, reopened, per
department), and the subscribers per subscription topic (政策订阅, as they stand now). Every figure is a GROUP BY in the database (never all rows in Python), with the local
day computed by `handoff.stats.china_day`, a SQL expression compiled for SQLite
(``date(x, '+8 hours')``) and PostgreSQL (``CAST(x + INTERVAL '8 hours' AS DATE)``). Also the CSV
export, whose text cells cannot start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket
from handoff.sla import WorkCalendar
from handoff.stats import TicketStats, china_day, stats_rows, ticket_stats
from handoff.tickets import OPEN_STATUSES
from knowledge.errors import InvalidInput
from knowledge.faqs import formula_safe
from knowledge.models import CHINA_TZ, Faq, QueryLog, to_db_time
from knowledge.subscriptions import SubscriptionStore

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
    tickets: TicketStats  # the tickets received in the range (handoff.stats, as /board/stats)
    tickets_open_overdue: int  # open now and past their due date (whenever opened)
    subscriptions: tuple[tuple[str, int], ...] = ()  # subscribers per topic now (knowledge.subscriptions)

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
    now_day = today or today_china()
    in_range = and_(QueryLog.at >= lo, QueryLog.at < hi, QueryLog.outcome.not_in(NOT_QUESTIONS))
    day = china_day(QueryLog.at)
    with sessions() as s:
        per_day: dict[tuple[dt.date, str], int] = {}
        for d, channel, n in s.execute(
            select(day, QueryLog.channel, func.count()).where(in_range).group_by(day, QueryLog.channel)
        ):
            per_day[(_as_date(d), str(channel))] = int(n)
        outcome_counts = {
            str(o): int(n)
            for o, n in s.execute(
                select(QueryLog.outcome, func.count()).where(in_range).group_by(QueryLog.outcome)
            )
        }
        rating_counts = {
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

        open_overdue = int(
            s.execute(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < now_day)
            ).scalar_one()
        )
    tickets = ticket_stats(sessions, calendar, start, end, today=now_day)  # after the session closed
    channels = tuple(
        sorted(
            {c for _, c in per_day}, key=lambda c: (-sum(v for (_, ch), v in per_day.items() if ch == c), c)
        )
    )
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    daily = tuple((d, tuple(per_day.get((d, c), 0) for c in channels)) for d in days)
    return Dashboard(
        start=start,
        end=end,
        channels=channels,
        daily=daily,
        questions=sum(outcome_counts.values()),
        outcomes=tuple((k, outcome_counts.get(k, 0)) for k in OUTCOME_LABELS),
        top_faqs=tuple(
            TopFaq(str(f), str(titles.get(str(f), "（已删除）")), int(c), int(u or 0), int(x or 0))
            for f, c, u, x in top_rows
        ),
        answers=outcome_counts.get("answer", 0),
        useful=rating_counts.get("useful", 0),
        useless=rating_counts.get("useless", 0),
        tickets=tickets,
        tickets_open_overdue=open_overdue,
        subscriptions=tuple(SubscriptionStore(sessions).counts()),
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
    t = d.tickets.total
    yield row("当前超期未办结", d.tickets_open_overdue, "")
    yield row("答复用时中位数（工作日）", "" if t.median_days is None else t.median_days, "")
    yield row("答复用时90%分位（工作日）", "" if t.p90_days is None else t.p90_days, "")
    yield row()
    yield row("日期", *[CHANNEL_LABELS.get(c, c) for c in d.channels], "提问合计", "收到留言")
    received = dict(d.tickets.daily_received)
    for day, counts in d.daily:
        yield row(f"{day:%Y-%m-%d}", *counts, sum(counts), received.get(day, 0))
    yield row()
    yield row("问答编号", "标准问题", "答复次数", "有用", "没用")
    for f in d.top_faqs:
        yield row(f.faq_id, f.question, f.count, f.useful, f.useless)
    yield row()
    yield row("留言办理（按收到留言的日期统计，与公开的办理情况统计同一口径）")
    for cells in stats_rows(d.tickets):
        yield row(*cells)


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
