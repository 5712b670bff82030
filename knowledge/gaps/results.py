"""What the gaps analysis takes in and gives out: this module owns `TicketSummary` (what the report
needs of a ticket, handed in by the caller: this package never imports handoff), the topic and its
samples, ticket links and FAQ drafts, `GapAnalysis` (all topics of a period) and its cut for one
drafting unit or the overview of all units (`GapReport`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from knowledge.gaps.links import BrokenLink, for_unit
from knowledge.gaps.period import Period
from knowledge.gaps.routing import UNASSIGNED
from knowledge.gaps.selection import REASONS

OVERVIEW = "全部单位"


@dataclass(frozen=True)
class TicketSummary:
    """What the report needs of a ticket (政策留言). The caller masks `question` and `reply`."""

    no: str
    question: str
    department: str
    status: str
    reply: str | None
    created_at: dt.datetime  # naive UTC, or timezone-aware (converted)


@dataclass(frozen=True)
class Sample:
    text: str  # masked
    count: int
    reasons: tuple[tuple[str, int], ...] = ()  # why these questions count as unanswered


@dataclass(frozen=True)
class TicketLink:
    no: str
    question: str
    department: str
    status: str
    reply: str | None


@dataclass(frozen=True)
class NearestFaq:
    """The existing FAQ that came closest to a topic's representative question (a search now)."""

    faq_id: str
    question: str
    score: float


@dataclass(frozen=True)
class Topic:
    key: str  # T001 ... by rank in the whole analysis
    label: str
    keywords: tuple[str, ...]
    count: int
    askers: int
    channels: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    representative: str  # the most asked phrasing (masked)
    samples: tuple[Sample, ...]
    trend: tuple[int, ...]  # questions matching the topic in each previous week, oldest first
    tickets: tuple[TicketLink, ...]
    unit: str
    route: str  # a key of ROUTE_SOURCES
    days: tuple[tuple[dt.date, int], ...]
    nearest: NearestFaq | None = None


@dataclass(frozen=True)
class FaqDraft:
    topic_key: str
    topic_label: str
    question: str
    answer: str
    ticket_no: str
    unit: str


@dataclass(frozen=True)
class GapReport:
    """The report of one drafting unit (or the overview of all units when `unit` is None)."""

    period: Period
    unit: str | None
    total_questions: int  # all questions of the period (the unit's: those logged with its unit)
    unanswered: int
    reasons: tuple[tuple[str, int], ...]
    daily: tuple[tuple[dt.date, int, int], ...]  # day, questions, unanswered
    topics: tuple[Topic, ...]
    scattered: int  # unanswered questions in topics too small to list
    drafts: tuple[FaqDraft, ...]
    trend_labels: tuple[str, ...]
    units: tuple[tuple[str, int, int], ...] = ()  # overview only: unit, topics, unanswered
    broken_links: tuple[BrokenLink, ...] = ()  # knowledge.gaps.links

    @property
    def empty(self) -> bool:
        return self.unanswered == 0

    @property
    def title(self) -> str:
        return f"{self.unit or OVERVIEW} 未解答问题周报（{self.period.label}）"


@dataclass(frozen=True)
class GapAnalysis:
    """All topics of a period; `report(unit)` cuts the view of one drafting unit."""

    period: Period
    total_questions: int
    daily_total: tuple[tuple[dt.date, int], ...]
    unit_totals: tuple[tuple[str, int], ...]  # questions logged with each unit
    topics: tuple[Topic, ...]  # listed topics, by count
    scattered: tuple[tuple[str, dt.date, str], ...]  # (unit, local day, reason) of unlisted questions
    drafts: tuple[FaqDraft, ...]
    trend_labels: tuple[str, ...]
    broken_links: tuple[BrokenLink, ...] = ()  # knowledge.gaps.links

    @property
    def units(self) -> list[str]:
        names = {t.unit for t in self.topics} | {u for u, _, _ in self.scattered}
        return sorted(names, key=lambda u: (u == UNASSIGNED, u))

    def report(self, unit: str | None = None) -> GapReport:
        topics = tuple(t for t in self.topics if unit is None or t.unit == unit)
        scattered = [s for s in self.scattered if unit is None or s[0] == unit]
        days = self.period.days
        per_day: Counter[dt.date] = Counter()
        reasons: Counter[str] = Counter()
        for t in topics:
            per_day.update(dict(t.days))
            reasons.update(dict(t.reasons))
        for _, day, reason in scattered:
            per_day[day] += 1
            reasons[reason] += 1
        totals = dict(self.daily_total)
        if unit is None:
            total = self.total_questions
            daily = tuple((d, totals.get(d, 0), per_day.get(d, 0)) for d in days)
            units: dict[str, list[int]] = {}
            for t in topics:
                units.setdefault(t.unit, [0, 0])
                units[t.unit][0] += 1
                units[t.unit][1] += t.count
            for u, _, _ in scattered:
                units.setdefault(u, [0, 0])[1] += 1
            unit_rows = tuple(
                sorted(
                    ((u, v[0], v[1]) for u, v in units.items()),
                    key=lambda r: (r[0] == UNASSIGNED, -r[2], r[0]),
                )
            )
        else:
            total = dict(self.unit_totals).get(unit, 0)
            daily = tuple((d, 0, per_day.get(d, 0)) for d in days)
            unit_rows = ()
        unanswered = sum(t.count for t in topics) + len(scattered)
        drafts = tuple(d for d in self.drafts if unit is None or d.unit == unit)
        return GapReport(
            self.period,
            unit,
            total,
            unanswered,
            tuple((k, reasons[k]) for k in REASONS if reasons.get(k)),
            daily,
            topics,
            len(scattered),
            drafts,
            self.trend_labels,
            unit_rows,
            for_unit(self.broken_links, unit),
        )
