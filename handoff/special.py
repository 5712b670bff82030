"""专题 cases (seed 002 二.4: 对留言反映较为集中的问题……政策制定机关及时启动专题调查): this module
owns the rule (`SpecialRule`), the scan that opens cases and the case list. A topic of unanswered
questions (the weekly report's analysis, `knowledge.gaps`, over the last `window_workdays` working
days of `handoff.sla`) opens one case for its drafting unit, due `due_workdays` working days later,
when `askers` distinct citizens asked it in the window, or when it was asked `surge_factor` times as
often as in an average week of the four before (and by at least `min_surge_askers` citizens). A topic
that already has a case (open, or opened within `dedup_days`) opens nothing new: the same questions
(replaying the same data) or the same intent by the knowledge base's matcher. Each case is e-mailed
once: the caller claims a case with `mark_mailed` (one process wins), sends it, and calls
`unmark_mailed` when sending failed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import SpecialCase as CaseRow
from handoff.sla import WorkCalendar
from handoff.weekly import faq_locator, ticket_summaries, unit_locator
from knowledge.answer import KnowledgeBase
from knowledge.errors import InvalidInput, NotFound
from knowledge.gaps import UNASSIGNED, GapParams, Period, Topic, analyse_store
from knowledge.models import CHINA_TZ, to_db_time, utcnow
from knowledge.usage import QueryLogStore

TRIGGERS = {"askers": "短期内提问人数集中", "surge": "较前四周平均明显增多"}
STATUSES = {"open": "调查中", "closed": "已办结"}


@dataclass(frozen=True)
class SpecialRule:
    askers: int = 10
    window_workdays: int = 3
    surge_factor: float = 3.0
    min_surge_askers: int = 3
    due_workdays: int = 10
    dedup_days: int = 28

    def __post_init__(self) -> None:
        if self.askers < 1 or self.min_surge_askers < 1:
            raise InvalidInput("专题提问人数阈值应至少为 1", "special topic askers < 1")
        if not 1 <= self.window_workdays <= 20 or not 1 <= self.due_workdays <= 120:
            raise InvalidInput("专题的工作日窗口或办理期限超出范围", "special window/due days out of range")
        if self.surge_factor <= 1.0:
            raise InvalidInput("专题增长倍数应大于 1", "special surge factor <= 1")


@dataclass(frozen=True)
class Case:
    no: str
    unit: str
    label: str
    representative: str
    samples: tuple[str, ...]
    askers: int
    questions: int
    trigger: str
    window_start: dt.date
    window_end: dt.date
    opened_at: dt.datetime  # naive UTC
    due_on: dt.date
    status: str
    closed_at: dt.datetime | None
    closed_by: str | None
    emailed_at: dt.datetime | None

    @property
    def trigger_text(self) -> str:
        return TRIGGERS.get(self.trigger, self.trigger)

    @property
    def status_text(self) -> str:
        return STATUSES.get(self.status, self.status)

    def as_dict(self) -> dict[str, object]:
        return {
            "no": self.no,
            "unit": self.unit,
            "label": self.label,
            "representative": self.representative,
            "samples": list(self.samples),
            "askers": self.askers,
            "questions": self.questions,
            "trigger": self.trigger,
            "window": [self.window_start.isoformat(), self.window_end.isoformat()],
            "opened_at": self.opened_at.isoformat(),
            "due_on": self.due_on.isoformat(),
            "status": self.status,
            "emailed": self.emailed_at is not None,
        }


def _case(r: CaseRow) -> Case:
    return Case(
        r.no,
        r.unit,
        r.label,
        r.representative,
        tuple(r.samples or ()),
        r.askers,
        r.questions,
        r.trigger,
        r.window_start,
        r.window_end,
        r.opened_at,
        r.due_on,
        r.status,
        r.closed_at,
        r.closed_by,
        r.emailed_at,
    )


class SpecialTopics:
    """Scan for concentrating topics, open 专题 cases, list and close them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        kb: KnowledgeBase,
        calendar: WorkCalendar,
        rule: SpecialRule | None = None,
        params: GapParams | None = None,
    ) -> None:
        self.sessions = sessions
        self.kb = kb
        self.calendar = calendar
        self.rule = rule or SpecialRule()
        self.params = params or GapParams()

    def window(self, now: dt.datetime) -> Period:
        """The last `window_workdays` working days up to `now` (days off in between included)."""
        today = to_db_time(now).replace(tzinfo=dt.UTC).astimezone(CHINA_TZ).date()
        day, found = today, 0
        for _ in range(60):
            if self.calendar.is_workday(day):
                found += 1
                if found == self.rule.window_workdays:
                    break
            day -= dt.timedelta(days=1)
        start = to_db_time(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))
        return Period(f"{day:%Y%m%d}-{today:%Y%m%d}", start, to_db_time(now), day, today)

    def _trigger(self, t: Topic) -> str | None:
        r = self.rule
        if t.askers >= r.askers:
            return "askers"
        weekly = sum(t.trend) / len(t.trend) if t.trend else 0.0
        if weekly > 0 and t.count >= r.surge_factor * weekly and t.askers >= r.min_surge_askers:
            return "surge"
        return None

    def scan(self, now: dt.datetime | None = None) -> list[Case]:
        """Open a case for every concentrating topic that has none yet; the new cases."""
        now = to_db_time(now) if now is not None else utcnow()
        period = self.window(now)
        self.kb.refresh()
        p = self.params
        analysis = analyse_store(
            QueryLogStore(self.sessions),
            period,
            sessions=self.sessions,
            tickets=ticket_summaries(self.sessions, period.start - dt.timedelta(weeks=p.trend_weeks)),
            text=self.kb.text,
            locate_unit=unit_locator(self.kb),
            locate_faq=faq_locator(self.kb),
            matcher=self.kb.matcher,
            params=p,
        )
        opened: list[Case] = []
        with self.sessions.begin() as s:
            recent = self._recent(s, now)
            for t in analysis.topics:
                trigger = self._trigger(t)
                if trigger is None or self._known(t, recent):
                    continue
                row = self._open(s, t, trigger, period, now)
                recent.append(row)
                opened.append(_case(row))
        return opened

    def _recent(self, s: Session, now: dt.datetime) -> list[CaseRow]:
        since = now - dt.timedelta(days=self.rule.dedup_days)
        stmt = select(CaseRow).where(or_(CaseRow.status == "open", CaseRow.opened_at >= since))
        return list(s.scalars(stmt))

    def _known(self, t: Topic, recent: list[CaseRow]) -> bool:
        texts = {smp.text for smp in t.samples}
        for c in recent:
            if texts & set(c.samples or ()) or t.representative == c.representative:
                return True
            if self.kb.matcher.similarity(t.representative, c.representative) >= self.params.same_intent:
                return True
        return False

    def _open(self, s: Session, t: Topic, trigger: str, period: Period, now: dt.datetime) -> CaseRow:
        local = now.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ)
        prefix = f"ZT{local:%Y%m%d}"
        taken = s.scalars(select(CaseRow.no).where(CaseRow.no.like(f"{prefix}%"))).all()
        row = CaseRow(
            no=f"{prefix}{len(taken) + 1:03d}",
            unit=t.unit if t.unit else UNASSIGNED,
            label=t.label[:200],
            representative=t.representative,
            samples=[smp.text for smp in t.samples],
            askers=t.askers,
            questions=t.count,
            trigger=trigger,
            window_start=period.start_day,
            window_end=period.end_day,
            opened_at=now,
            due_on=self.calendar.add_working_days(local.date(), self.rule.due_workdays).day,
            status="open",
        )
        s.add(row)
        s.flush()
        return row

    def cases(self, *, status: str | None = None, units: tuple[str, ...] | None = None) -> list[Case]:
        """Cases, newest first; `units` limits them to those units."""
        stmt = select(CaseRow).order_by(CaseRow.opened_at.desc(), CaseRow.id.desc())
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput(f"未知的专题状态：{status}", f"unknown status {status!r}")
            stmt = stmt.where(CaseRow.status == status)
        if units is not None:
            stmt = stmt.where(CaseRow.unit.in_(units))
        with self.sessions() as s:
            return [_case(r) for r in s.scalars(stmt)]

    def close(self, no: str, *, by: str, now: dt.datetime | None = None) -> Case:
        with self.sessions.begin() as s:
            row = s.scalar(select(CaseRow).where(CaseRow.no == no.strip()))
            if row is None:
                raise NotFound(f"没有专题 {no}", f"special case {no!r} not found")
            if row.status != "closed":
                row.status, row.closed_by = "closed", by
                row.closed_at = to_db_time(now) if now is not None else utcnow()
            return _case(row)

    def unmailed(self) -> list[Case]:
        with self.sessions() as s:
            rows = s.scalars(select(CaseRow).where(CaseRow.emailed_at.is_(None)).order_by(CaseRow.id))
            return [_case(r) for r in rows]

    def mark_mailed(self, no: str, at: dt.datetime | None = None) -> bool:
        """Record the e-mail; False when another process recorded it first (sent once)."""
        with self.sessions.begin() as s:
            row = s.scalar(select(CaseRow).where(CaseRow.no == no, CaseRow.emailed_at.is_(None)))
            if row is None:
                return False
            row.emailed_at = to_db_time(at) if at is not None else utcnow()
            return True

    def unmark_mailed(self, no: str) -> None:
        """Undo `mark_mailed` when the message could not be sent (it is tried again next time)."""
        with self.sessions.begin() as s:
            row = s.scalar(select(CaseRow).where(CaseRow.no == no))
            if row is not None:
                row.emailed_at = None


__all__ = ["STATUSES", "TRIGGERS", "Case", "SpecialRule", "SpecialTopics"]
