"""QueryLog: every question a citizen asked, with its outcome, score, matched FAQ, drafting unit,
rating and ticket. The text arrives already masked by the caller (handoff.privacy); this module never
sees personal data in clear. The gaps report and the dashboard read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from knowledge.models import QueryLog, utcnow

OUTCOMES = ("answer", "clarify", "passage", "none", "handoff", "command", "status", "out_of_scope")
RATINGS = ("useful", "useless")


@dataclass(frozen=True)
class LogRow:
    id: int
    at: dt.datetime
    channel: str
    user_ref: str
    session_id: str | None
    text: str
    outcome: str
    score: float | None
    faq_id: str | None
    unit: str | None
    rating: str | None
    ticket_no: str | None


def _row(r: QueryLog) -> LogRow:
    return LogRow(
        r.id,
        r.at,
        r.channel,
        r.user_ref,
        r.session_id,
        r.text,
        r.outcome,
        r.score,
        r.faq_id,
        r.unit,
        r.rating,
        r.ticket_no,
    )


# Built once: this insert is on every question's path (Core table, parameters bound at execute).
_TABLE = QueryLog.__table__
_INSERT = insert(_TABLE).returning(_TABLE.c.id)  # type: ignore[arg-type]


class QueryLogStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self,
        *,
        channel: str,
        user_ref: str,
        text: str,
        outcome: str,
        session_id: str | None = None,
        score: float | None = None,
        faq_id: str | None = None,
        unit: str | None = None,
        ticket_no: str | None = None,
        at: dt.datetime | None = None,
        session: Session | Connection | None = None,
    ) -> int:
        """Write one entry; inside the caller's transaction when `session` is given."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        values = dict(
            at=at or utcnow(),
            channel=channel,
            user_ref=user_ref,
            session_id=session_id,
            text=text[:2000],
            outcome=outcome,
            score=score,
            faq_id=faq_id,
            unit=unit,
            ticket_no=ticket_no,
        )
        if session is not None:
            return int(session.execute(_INSERT, values).scalar_one())
        with self._sessions.begin() as s:
            return int(s.execute(_INSERT, values).scalar_one())

    def rate(self, log_id: int, rating: str, *, session_id: str | None = None) -> bool:
        """Rate an entry once (useful / useless); only the session that asked may rate it."""
        if rating not in RATINGS:
            raise ValueError(f"unknown rating {rating!r}")
        with self._sessions.begin() as s:
            stmt = update(QueryLog).where(QueryLog.id == log_id, QueryLog.rating.is_(None))
            if session_id is not None:
                stmt = stmt.where(QueryLog.session_id == session_id)
            return bool(s.execute(stmt.values(rating=rating)).rowcount)  # type: ignore[attr-defined]

    def link_ticket(self, log_id: int, ticket_no: str, *, session: Session | None = None) -> None:
        stmt = update(QueryLog).where(QueryLog.id == log_id).values(ticket_no=ticket_no, outcome="handoff")
        if session is not None:
            session.execute(stmt)
            return
        with self._sessions.begin() as s:
            s.execute(stmt)

    def get(self, log_id: int) -> LogRow | None:
        with self._sessions() as s:
            r = s.get(QueryLog, log_id)
            return _row(r) if r else None

    def top_faqs(self, n: int = 5, *, since: dt.datetime | None = None) -> list[tuple[str, int]]:
        """The most answered FAQs (for the welcome message and the dashboard)."""
        with self._sessions() as s:
            stmt = (
                select(QueryLog.faq_id, func.count())
                .where(QueryLog.outcome == "answer", QueryLog.faq_id.is_not(None))
                .group_by(QueryLog.faq_id)
                .order_by(func.count().desc(), QueryLog.faq_id)
                .limit(n)
            )
            if since is not None:
                stmt = stmt.where(QueryLog.at >= since)
            return [(str(f), int(c)) for f, c in s.execute(stmt)]

    def rows(self, start: dt.datetime, end: dt.datetime, *, batch: int = 5000) -> Iterator[LogRow]:
        """Entries with start <= at < end, in id order, streamed in batches."""
        last = 0
        while True:
            with self._sessions() as s:
                chunk = list(
                    s.scalars(
                        select(QueryLog)
                        .where(QueryLog.at >= start, QueryLog.at < end, QueryLog.id > last)
                        .order_by(QueryLog.id)
                        .limit(batch)
                    )
                )
            if not chunk:
                return
            yield from (_row(r) for r in chunk)
            last = chunk[-1].id

    def count(self) -> int:
        with self._sessions() as s:
            return int(s.scalar(select(func.count()).select_from(QueryLog)) or 0)
