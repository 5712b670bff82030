"""The read side of the ticket service: one ticket by number (or by number and 查询码), a user's
tickets, a ticket's history, filtered and counted lists for the console (`TicketQueries`, a base class
of `TicketService` over the same sessions and clock)."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket, TicketEvent
from handoff.tickets.records import (
    ALL_STATUSES,
    LOOKUP_FAILED_MESSAGE,
    MAX_PAGE,
    MERGED,
    NOT_FOUND_MESSAGE,
    OPEN_STATUSES,
    STATUSES,
    EventView,
    TicketView,
    _event_view,
    _Sel,
    _view,
)
from handoff.tickets.rules import (
    _normalise_no,
)
from knowledge.errors import InvalidInput, NotFound


class TicketQueries:
    """Reads over `self._sessions`; `TicketService` provides the sessions and `_today`."""

    _sessions: sessionmaker[Session]

    def _today(self) -> dt.date:
        raise NotImplementedError

    # --- reading -------------------------------------------------------------------------------

    def get(self, no: str) -> TicketView:
        with self._sessions() as s:
            return _view(self._load(s, no), self._today())

    def lookup(self, no: str, verify_code: str) -> TicketView:
        """The public status lookup: a wrong number or code gives the same NotFound."""
        with self._sessions() as s:
            t = s.execute(select(Ticket).where(Ticket.no == _normalise_no(no))).scalar_one_or_none()
            expected = t.verify_code if t is not None else "------"
            ok = hmac.compare_digest(expected.encode(), (verify_code or "").strip().encode())
            if t is None or not ok:
                raise NotFound(LOOKUP_FAILED_MESSAGE, "ticket lookup: unknown number or wrong code")
            return _view(t, self._today())

    def find_for_user(self, channel: str, user_ref: str, *, limit: int = 20) -> list[TicketView]:
        """A citizen's own tickets, newest first."""
        with self._sessions() as s:
            rows = (
                s.execute(
                    select(Ticket)
                    .where(Ticket.channel == channel, Ticket.user_ref == user_ref)
                    .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                    .limit(max(1, min(limit, MAX_PAGE)))
                )
                .scalars()
                .all()
            )
            today = self._today()
            return [_view(t, today) for t in rows]

    def events(self, no: str) -> list[EventView]:
        with self._sessions() as s:
            t = self._load(s, no)
            rows = (
                s.execute(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == t.id)
                    .order_by(TicketEvent.at, TicketEvent.id)
                )
                .scalars()
                .all()
            )
            return [_event_view(e) for e in rows]

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        department: str | Sequence[str] | None = None,
        text: str | None = None,
        overdue: bool | None = None,
        flagged: bool | None = None,
        published: bool | None = None,
        assigned_to: str | None = None,
        phone: str | None = None,
        name: str | None = None,
        names: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[TicketView]:
        """Tickets matching every given filter, earliest due date first. Merged tickets (已合并) only
        when `status` names them. `phone`: the contact phone contains these digits; `name`: the
        contact name contains this text; `names`: `text` also matches the contact name (callers audit
        these as contact searches: `handoff.tickets.search`)."""
        stmt = self._filtered(
            select(Ticket),
            status=status,
            department=department,
            text=text,
            overdue=overdue,
            flagged=flagged,
            published=published,
            assigned_to=assigned_to,
            names=names,
        )
        if phone is not None:
            stmt = stmt.where(func.coalesce(Ticket.contact_phone, "").contains(phone, autoescape=True))
        if name is not None:
            stmt = stmt.where(func.coalesce(Ticket.contact_name, "").contains(name.strip(), autoescape=True))
        stmt = stmt.order_by(Ticket.due_date, Ticket.created_at, Ticket.id)
        stmt = stmt.limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))
        with self._sessions() as s:
            today = self._today()
            return [_view(t, today) for t in s.execute(stmt).scalars().all()]

    def counts(self, department: str | Sequence[str] | None = None) -> dict[str, int]:
        """Tickets per status (every status present, zero included) plus "overdue" and "flagged"."""
        out = dict.fromkeys(STATUSES, 0)
        with self._sessions() as s:
            stmt = self._filtered(select(Ticket.status, func.count()), department=department)
            for status, n in s.execute(stmt.group_by(Ticket.status)).all():
                out[str(status)] = int(n)
            overdue = self._filtered(
                select(func.count()).select_from(Ticket), department=department, overdue=True
            )
            out["overdue"] = int(s.execute(overdue).scalar_one())
            flagged = self._filtered(
                select(func.count()).select_from(Ticket), department=department, flagged=True
            )
            out["flagged"] = int(s.execute(flagged).scalar_one())
        return out

    def _filtered(
        self,
        stmt: _Sel,
        *,
        status: str | Sequence[str] | None = None,
        department: str | Sequence[str] | None = None,
        text: str | None = None,
        overdue: bool | None = None,
        flagged: bool | None = None,
        published: bool | None = None,
        assigned_to: str | None = None,
        names: bool = False,
    ) -> _Sel:
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            unknown = [w for w in wanted if w not in ALL_STATUSES]
            if unknown:
                raise InvalidInput(f"未知的办理状态：{unknown[0]}", f"unknown status filter {unknown!r}")
            stmt = stmt.where(Ticket.status.in_(wanted))
        else:
            stmt = stmt.where(Ticket.status != MERGED)
        if department is not None:
            depts = [department] if isinstance(department, str) else list(department)
            stmt = stmt.where(Ticket.department.in_([d.strip() for d in depts]))
        if text is not None and text.strip():
            needle = text.strip().lower()
            fields = [Ticket.no, Ticket.question, func.coalesce(Ticket.reply, "")]
            if names:
                fields.append(func.coalesce(Ticket.contact_name, ""))
            stmt = stmt.where(or_(*(func.lower(f).contains(needle, autoescape=True) for f in fields)))
        if overdue is not None:
            late = and_(Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < self._today())
            stmt = stmt.where(late if overdue else not_(late))
        if flagged is not None:
            stmt = stmt.where(Ticket.flagged.is_(flagged))
        if published is not None:
            stmt = stmt.where(Ticket.published.is_(published))
        if assigned_to is not None:
            stmt = stmt.where(Ticket.assigned_to == assigned_to)
        return stmt

    @staticmethod
    def _load(s: Session, no: str, *, for_update: bool = False) -> Ticket:
        stmt = select(Ticket).where(Ticket.no == _normalise_no(no))
        if for_update:
            if s.get_bind().dialect.name == "sqlite":
                # SQLite has no row locks: a no-op write takes the database write lock first, so
                # the read below cannot go stale before the UPDATE (concurrent writers wait).
                s.execute(
                    sql_text("UPDATE ticket SET version = version WHERE no = :no"), {"no": _normalise_no(no)}
                )
            stmt = stmt.with_for_update()
        t = s.execute(stmt).scalar_one_or_none()
        if t is None:
            raise NotFound(NOT_FOUND_MESSAGE, f"ticket {_normalise_no(no)!r} not found")
        return t
