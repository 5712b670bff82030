"""The weekly unanswered-questions report as the console, the CLI and the scheduler use it: ticket
summaries for the analysis (masked, read straight from the ticket table), the knowledge-base lookup
that routes a topic to a drafting unit, the analysis of an ISO week with a small in-process cache
(the console shows, downloads and charts the same analysis), which units a console user may see,
and the FAQ draft made from one topic (the representative question, the other sample questions as
similar phrasings, the topic's unit, and the latest ticket reply as answer when there is one).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket
from handoff.privacy import mask
from knowledge.answer import KnowledgeBase
from knowledge.errors import InvalidInput, NotFound
from knowledge.gaps import (
    UNASSIGNED,
    GapAnalysis,
    GapParams,
    GapReport,
    NearestFaq,
    Period,
    TicketSummary,
    Topic,
    analyse_store,
    parse_week,
    render_chart,
)
from knowledge.models import CHINA_TZ
from knowledge.usage import QueryLogStore

REPORT_TAG: Final = "未解答问题周报"


def week_tag(label: str) -> str:
    return f"周报{label}"


def ticket_summaries(sessions: sessionmaker[Session], since: dt.datetime) -> list[TicketSummary]:
    """Tickets created since `since` (naive UTC) as masked summaries for the gaps analysis."""
    stmt = (
        select(
            Ticket.no,
            Ticket.question,
            Ticket.department,
            Ticket.status,
            Ticket.reply,
            Ticket.publish_reply,
            Ticket.created_at,
        )
        .where(Ticket.created_at >= since)
        .order_by(Ticket.created_at, Ticket.no)
    )
    with sessions() as s:
        rows = s.execute(stmt).all()
    out: list[TicketSummary] = []
    for no, question, department, status, reply, publish_reply, created in rows:
        text = publish_reply or reply
        out.append(
            TicketSummary(
                no=no,
                question=mask(question),
                department=department,
                status=status,
                reply=mask(text) if text else None,
                created_at=created,
            )
        )
    return out


def unit_locator(kb: KnowledgeBase) -> Callable[[str], str | None]:
    """A topic's drafting unit from a knowledge-base search now (nearest FAQ or policy)."""

    def locate(question: str) -> str | None:
        unit: str | None = kb.ask(question).unit
        return unit

    return locate


def faq_locator(kb: KnowledgeBase) -> Callable[[str], NearestFaq | None]:
    """The existing FAQ nearest to a topic's question: the top hit of a knowledge-base search now,
    whether or not it would be answered."""

    def locate(question: str) -> NearestFaq | None:
        hits = kb.ask(question).hits
        if not hits:
            return None
        return NearestFaq(hits[0].faq_id, hits[0].question, round(hits[0].score, 4))

    return locate


def analyse_week(
    sessions: sessionmaker[Session], kb: KnowledgeBase, period: Period, params: GapParams | None = None
) -> GapAnalysis:
    """The gaps analysis of `period` over the query log, the tickets and the keyword routes."""
    p = params or GapParams()
    tickets = ticket_summaries(sessions, period.start - dt.timedelta(weeks=p.trend_weeks))
    return analyse_store(
        QueryLogStore(sessions),
        period,
        sessions=sessions,
        tickets=tickets,
        text=kb.text,
        locate_unit=unit_locator(kb),
        locate_faq=faq_locator(kb),
        matcher=kb.matcher,
        params=p,
    )


def recent_weeks(n: int = 12, today: dt.date | None = None) -> list[str]:
    """ISO week labels, the current (unfinished) week first."""
    day = today or dt.datetime.now(CHINA_TZ).date()
    out: list[str] = []
    for i in range(n):
        y, w, _ = (day - dt.timedelta(weeks=i)).isocalendar()
        out.append(f"{y}-W{w:02d}")
    return out


def previous_week(today: dt.date | None = None) -> str:
    return recent_weeks(2, today)[1]


def visible_units(role: str, departments: tuple[str, ...], units: list[str]) -> list[str]:
    """Admins and supervisors see every unit (and the overview); staff and drafting-unit readers
    only their own units."""
    if role in ("admin", "supervisor"):
        return list(units)
    return [u for u in units if u in departments]


def may_see_unit(role: str, departments: tuple[str, ...], unit: str | None) -> bool:
    if role in ("admin", "supervisor"):
        return True
    return unit is not None and unit in departments


@dataclass
class _Entry:
    analysis: GapAnalysis
    at: float
    charts: dict[str | None, bytes]


class WeeklyReports:
    """The analysis of an ISO week, cached for `ttl` seconds (a finished week's data changes only
    through late ratings and tickets) so that the report page, its chart and its downloads agree."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        kb: KnowledgeBase,
        *,
        params: GapParams | None = None,
        ttl: float = 300.0,
        size: int = 8,
    ) -> None:
        self._sessions = sessions
        self._kb = kb
        self._params = params or GapParams()
        self._ttl = ttl
        self._size = size
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def _entry(self, week: str) -> _Entry:
        period = parse_week(week)
        label = period.label
        with self._lock:
            hit = self._cache.get(label)
            if hit is not None and time.monotonic() - hit.at < self._ttl:
                self._cache.move_to_end(label)
                return hit
            build_lock = self._building.setdefault(label, threading.Lock())
        with build_lock:  # one build per week at a time; others wait for it
            with self._lock:
                hit = self._cache.get(label)
                if hit is not None and time.monotonic() - hit.at < self._ttl:
                    return hit
            self._kb.refresh()
            entry = _Entry(analyse_week(self._sessions, self._kb, period, self._params), time.monotonic(), {})
            with self._lock:
                self._cache[label] = entry
                self._cache.move_to_end(label)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
            return entry

    def analysis(self, week: str) -> GapAnalysis:
        return self._entry(week).analysis

    def report(self, week: str, unit: str | None) -> GapReport:
        return self.analysis(week).report(unit)

    def chart(self, week: str, unit: str | None) -> bytes:
        entry = self._entry(week)
        png = entry.charts.get(unit)
        if png is None:
            png = render_chart(entry.analysis.report(unit))
            entry.charts[unit] = png
        return png

    def invalidate(self, week: str | None = None) -> None:
        with self._lock:
            if week is None:
                self._cache.clear()
            else:
                self._cache.pop(parse_week(week).label, None)


def find_topic(analysis: GapAnalysis, key: str, representative: str) -> Topic:
    """The topic `key` of the analysis, checked against the question the user saw (the analysis
    may have been recomputed with new data in between, which can renumber topics)."""
    for t in analysis.topics:
        if t.key == key:
            if t.representative != representative:
                break
            return t
    raise NotFound("报告内容已更新，请刷新页面后再操作", f"topic {key!r} changed or missing")


def topic_draft_fields(analysis: GapAnalysis, topic: Topic) -> dict[str, Any]:
    """An FAQ draft from a topic. The answer is the latest ticket reply of the topic when there is
    one, else empty: a draft may have no answer, and publishing requires one."""
    question = topic.representative.strip()[:500]
    if not question:
        raise InvalidInput("该主题没有可用的代表性问题", f"topic {topic.key} has no representative question")
    similar: list[str] = []
    for s in topic.samples:
        line = s.text.strip()
        if line and line != question and len(line) <= 500 and line not in similar:
            similar.append(line)
    answer = next((d.answer for d in analysis.drafts if d.topic_key == topic.key), "")
    return {
        "question": question,
        "similar": similar[:50],
        "answer": answer,
        "unit": None if topic.unit == UNASSIGNED else topic.unit,
        "tags": [REPORT_TAG, week_tag(analysis.period.label)],
    }


__all__ = [
    "REPORT_TAG",
    "WeeklyReports",
    "analyse_week",
    "find_topic",
    "may_see_unit",
    "previous_week",
    "recent_weeks",
    "faq_locator",
    "ticket_summaries",
    "topic_draft_fields",
    "unit_locator",
    "visible_units",
    "week_tag",
]
