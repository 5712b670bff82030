"""Staff notifications (工作人员提醒): which staff member is told what about which ticket, once.

`StaffAlerts.collect(now)` finds the events due at `now` and records each exactly once in the
`staff_notice` table (a unique event key, so a second run or a second worker adds nothing):
- ``new``: a ticket waiting in a department (待受理) -> that department's handlers (again after a
  transfer to another department);
- ``warning``: an open ticket on the working day before its due date (or on the due date) -> its
  handler, or the department's handlers while nobody has taken it; keyed by the due date, so a
  due date moved by 延期 warns again;
- ``overdue``: an open ticket after its due date -> the supervisors (escalation, per due date);
- ``dissatisfied``: a 不满意 rating -> the supervisors (per rating).
Working days come from `WorkCalendar` (official holidays, 调休 make-up days). A warning and an
escalation also write a line in the ticket's history and an audit entry, in the same transaction
as the event. Each recipient gets a row of their own; `dispatch` hands a recipient's waiting rows
to the caller's `enqueue` (the bot's durable outbox, same transaction) as one digest once the oldest
has waited `digest_minutes` (0: one mail per row), so mails reach a recipient at most every N
minutes. Items carry what the handler may see anyway: number, department, category, due date,
status and a masked excerpt, never contact data; a row keeps them only until its mail is queued
(then they live in the outbox row, which the retention job deletes with the other deliveries).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import AuditEntry, StaffNotice, StaffUser, Ticket, TicketEvent
from handoff.privacy import mask
from handoff.sla import WorkCalendar
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ

NEW: Final = "new"
WARNING: Final = "warning"
OVERDUE: Final = "overdue"
DISSATISFIED: Final = "dissatisfied"
KINDS: Final = (NEW, WARNING, OVERDUE, DISSATISFIED)
HISTORY_ACTIONS: Final = {WARNING: "sla_warning", OVERDUE: "sla_escalation"}  # history + audit
LOOKBACK: Final = dt.timedelta(days=3)  # new tickets and ratings older than this are not mailed
WARN_WINDOW: Final = dt.timedelta(days=20)  # due dates further ahead cannot be a working day away
_OPEN: Final = ("待受理", "办理中")
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def clean_email(email: str | None) -> str:
    """A staff member's notification address ("" = none) or a clear error."""
    value = (email or "").strip()
    if value and (len(value) > 200 or not _EMAIL.match(value)):
        raise InvalidInput(f"电子邮箱格式不正确：{value[:60]}", "bad staff e-mail address")
    return value


@dataclass(frozen=True)
class Mail:
    """One e-mail to write: a recipient, the items (oldest first) and the key that names it."""

    recipient: str
    items: list[dict[str, Any]]
    key: str


@dataclass(frozen=True)
class _Staff:
    username: str
    email: str
    role: str
    departments: tuple[str, ...]


def _naive_utc(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _item(kind: str, t: Ticket) -> dict[str, Any]:
    return {
        "kind": kind,
        "no": t.no,
        "department": t.department,
        "category": t.category,
        "status": t.status,
        "due_date": t.due_date.isoformat(),
        "assigned_to": t.assigned_to or "",
        "excerpt": mask(" ".join((t.question or "").split()))[:40],
    }


class StaffAlerts:
    """Collects staff notification events and hands them out as digests (see the module doc)."""

    def __init__(self, sessions: sessionmaker[Session], calendar: WorkCalendar) -> None:
        self._sessions = sessions
        self._calendar = calendar

    def warning_day(self, due: dt.date, workdays: dict[dt.date, bool] | None = None) -> dt.date:
        """The working day before `due` (the day the handler is warned); `workdays`: days looked up
        beforehand (the calendar may read the database, never inside the collecting transaction)."""
        day = due - dt.timedelta(days=1)
        while not (workdays[day] if workdays and day in workdays else self._calendar.is_workday(day)):
            day -= dt.timedelta(days=1)
        return day

    # --- collecting ------------------------------------------------------------------------------
    def collect(self, now: dt.datetime, *, mail: bool = True) -> dict[str, int]:
        """Record every event due at `now` (aware, or naive UTC) that is not recorded yet; with
        `mail` False (no SMTP configured) only the events, their history lines and audit entries.
        Returns the new events per kind."""
        at = _naive_utc(now)
        today = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).astimezone(CHINA_TZ).date()
        out = dict.fromkeys(KINDS, 0)
        first = today - dt.timedelta(days=40)  # a warning day is at most a long holiday before its due date
        workdays = {
            first + dt.timedelta(days=i): self._calendar.is_workday(first + dt.timedelta(days=i))
            for i in range((today + WARN_WINDOW - first).days + 1)
        }
        with self._sessions.begin() as s:
            staff = self._staff(s)
            candidates = list(self._events(s, at, today, workdays))
            known = _known_events(s, [event for _, _, event in candidates])
            for kind, t, event in candidates:
                if event not in known and self._record(s, kind, t, event, at, staff if mail else None):
                    out[kind] += 1
        return out

    def _events(
        self, s: Session, at: dt.datetime, today: dt.date, workdays: dict[dt.date, bool]
    ) -> Iterable[tuple[str, Ticket, str]]:
        since = at - LOOKBACK
        new = select(Ticket).where(Ticket.status == "待受理", Ticket.created_at >= since)
        for t in s.scalars(new.order_by(Ticket.id)).all():
            yield NEW, t, f"{NEW}:{t.no}:{t.department}"[:120]  # a transfer tells the new department
        due_soon = select(Ticket).where(Ticket.status.in_(_OPEN), Ticket.due_date <= today + WARN_WINDOW)
        for t in s.scalars(due_soon.order_by(Ticket.due_date, Ticket.id)).all():
            if t.due_date < today:
                yield OVERDUE, t, f"{OVERDUE}:{t.no}:{t.due_date.isoformat()}"
            elif self.warning_day(t.due_date, workdays) <= today:
                yield WARNING, t, f"{WARNING}:{t.no}:{t.due_date.isoformat()}"
        rated = select(Ticket).where(Ticket.rating == "不满意", Ticket.rated_at >= since)
        for t in s.scalars(rated.order_by(Ticket.id)).all():
            when = t.rated_at.strftime("%Y%m%dT%H%M%S") if t.rated_at else ""
            yield DISSATISFIED, t, f"{DISSATISFIED}:{t.no}:{when}"

    @staticmethod
    def _staff(s: Session) -> list[_Staff]:
        rows = s.scalars(select(StaffUser).where(StaffUser.active.is_(True), StaffUser.email.is_not(None)))
        return [
            _Staff(u.username, u.email or "", u.role, tuple(u.departments or ()))
            for u in rows
            if u.email and u.role in ("staff", "supervisor")
        ]

    @staticmethod
    def _recipients(kind: str, t: Ticket, staff: list[_Staff]) -> list[_Staff]:
        if kind in (OVERDUE, DISSATISFIED):
            return [u for u in staff if u.role == "supervisor"]
        handlers = [u for u in staff if u.role == "staff" and t.department in u.departments]
        if kind == WARNING and t.assigned_to:
            mine = [u for u in handlers if u.username == t.assigned_to]
            return mine or handlers
        return handlers

    def _record(
        self, s: Session, kind: str, t: Ticket, event: str, at: dt.datetime, staff: list[_Staff] | None
    ) -> bool:
        item = _item(kind, t)
        if not _insert(s, event=event, recipient="", kind=kind, no=t.no, data={}, at=at, queued=at):
            return False  # recorded before (another run or worker)
        to = self._recipients(kind, t, staff) if staff is not None else []
        for u in to:
            _insert(s, event=event, recipient=u.email, kind=kind, no=t.no, data=item, at=at, queued=None)
        action = HISTORY_ACTIONS.get(kind)
        if action is not None:
            detail = {
                "due_date": item["due_date"],
                "to": [u.username for u in to],
                "mailed": staff is not None,
            }
            s.add(TicketEvent(ticket_id=t.id, at=at, actor="system", action=action, detail=detail))
            s.add(
                AuditEntry(at=at, actor="system", role="", ip="", action=action, target=t.no, detail=detail)
            )
        return True

    # --- handing out -----------------------------------------------------------------------------
    def dispatch(
        self, now: dt.datetime, *, digest_minutes: int, enqueue: Callable[[Session, Mail], None]
    ) -> int:
        """Give every recipient whose oldest waiting row is `digest_minutes` old one mail of all
        their waiting rows (0: one mail per row), through `enqueue` in the transaction that marks
        the rows taken. Returns the number of mails."""
        at = _naive_utc(now)
        ready = at - dt.timedelta(minutes=max(0, digest_minutes))
        mails = 0
        with self._sessions.begin() as s:
            waiting = s.scalars(
                select(StaffNotice)
                .where(StaffNotice.queued_at.is_(None), StaffNotice.recipient != "")
                .order_by(StaffNotice.id)
            )
            by_recipient: dict[str, list[StaffNotice]] = defaultdict(list)
            for row in waiting:
                by_recipient[row.recipient].append(row)
            for recipient, rows in by_recipient.items():
                if rows[0].created_at > ready:
                    continue  # the digest is still collecting
                for group in [[r] for r in rows] if digest_minutes <= 0 else [rows]:
                    key = f"staff_mail:{group[0].id}"
                    items = [dict(r.data or {}) for r in group]
                    taken = s.execute(
                        update(StaffNotice)
                        .where(StaffNotice.id.in_([r.id for r in group]), StaffNotice.queued_at.is_(None))
                        .values(queued_at=at, delivery_key=key, data={})  # the outbox row has it now
                        .execution_options(synchronize_session=False)
                    )
                    if taken.rowcount != len(group):  # type: ignore[attr-defined]
                        raise RuntimeError("staff notices taken by another run")  # rolls back
                    enqueue(s, Mail(recipient, items, key))
                    mails += 1
        return mails


def _known_events(s: Session, events: list[str]) -> set[str]:
    """The events among `events` already recorded (one indexed lookup per 500)."""
    known: set[str] = set()
    for i in range(0, len(events), 500):
        chunk = [e[:120] for e in events[i : i + 500]]
        known |= set(
            s.scalars(
                select(StaffNotice.event).where(StaffNotice.recipient == "", StaffNotice.event.in_(chunk))
            )
        )
    return known


def _insert(
    s: Session,
    *,
    event: str,
    recipient: str,
    kind: str,
    no: str,
    data: dict[str, Any],
    at: dt.datetime,
    queued: dt.datetime | None,
) -> bool:
    ins = (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(StaffNotice)
    result = s.execute(
        ins.values(
            event=event[:120],
            recipient=recipient[:200],
            kind=kind,
            ticket_no=no,
            data=data,
            created_at=at,
            queued_at=queued,
        )
        .on_conflict_do_nothing(index_elements=["event", "recipient"])
        .returning(StaffNotice.id)  # rowcount is -1 here on psycopg: a returned id means inserted
    )
    return result.first() is not None


__all__ = ["DISSATISFIED", "KINDS", "NEW", "OVERDUE", "WARNING", "Mail", "StaffAlerts", "clean_email"]
