"""The one rule of a ticket's due date, shared by 延期 (handoff/tickets/extensions.py) and 补正
(handoff/tickets/supplements.py): due = the received date + (limit + approved 延期 + finished 补正 pauses)
working days, on the work calendar (official holidays and 调休 workdays). The limit is the category's
(`CategoryLimits`), else the department's, else the global one, kept on the ticket when it is set.

`_TimingBase` is the part of `TicketService` these mixins use: the service's clock, calendar and
update path, the `Notices` through which the citizen is told (bot's durable outbox, in the change's own
transaction), and `_plan`, which reads a ticket's parts before a write transaction opens (the calendar
may read the holiday table; on SQLite a second connection inside a write transaction waits for the busy
timeout). The change then checks that the parts it was planned on are still the ticket's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket
from handoff.sla import DueDate, WorkCalendar
from handoff.tickets.limits import CategoryLimits
from handoff.tickets.records import CONFLICT_MESSAGE, NOT_FOUND_MESSAGE, TicketView
from handoff.tickets.rules import _normalise_no
from knowledge.errors import Conflict, NotFound

# Outbox kinds of the notices to the citizen (rendered by bot.notifier.render_delivery).
EXTENDED = "ticket_extended"
SUPPLEMENT_ASKED = "ticket_supplement"
RESUMED = "ticket_resumed"


class Notices(Protocol):
    """Tells the citizen of a ticket change on the ticket's own channel (implemented by bot: a row in
    its durable outbox, written with `session` inside the change's transaction). Data only, no text;
    `key` makes the row unique, so a notice is queued exactly once."""

    def notice(
        self, session: Session, ticket: TicketView, *, kind: str, data: dict[str, Any], key: str
    ) -> None: ...


@dataclass(frozen=True)
class Step:
    """What a change records (the service's `_Change` shape): the event's action and detail."""

    action: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A ticket's time-limit parts as read before the write."""

    no: str
    status: str
    received: dt.date  # local date the ticket was received
    base: int  # the limit set at opening (or by a category change / transfer)
    extension: int
    paused: int
    due: dt.date

    def same(self, t: Ticket) -> None:
        """Conflict unless the ticket still has the parts this plan was made on."""
        if (t.due_date, t.extension_days or 0, t.paused_days or 0) != (self.due, self.extension, self.paused):
            raise Conflict(CONFLICT_MESSAGE, f"ticket {t.no}: time limit changed since it was read")


class _TimingBase:
    """Attributes and helpers of `TicketService` used by the time-limit mixins."""

    _sessions: sessionmaker[Session]
    _calendar: WorkCalendar
    _limits: Mapping[str, int]
    _default_limit: int
    _tz: dt.tzinfo
    _category_limits: CategoryLimits | None
    _notices: Notices | None
    _supplement_limit: int
    _update: Callable[..., TicketView]  # TicketService's
    _require: Callable[[Ticket, Sequence[str], str], None]
    _now: Callable[[], dt.datetime]
    _today: Callable[[], dt.date]

    @property
    def category_limits(self) -> CategoryLimits | None:
        """The per-category limits (the admin page edits them), if this service has them."""
        return self._category_limits

    def limit_for(self, department: str, category: str | None = None) -> int:
        """The time limit in working days: the category's if it has one, else the department's, else
        the global one."""
        if category is not None and self._category_limits is not None:
            days = self._category_limits.get(category)
            if days is not None:
                return days
        return self._limits.get(department.strip(), self._default_limit)

    def _local(self, at: dt.datetime) -> dt.date:
        return at.replace(tzinfo=dt.UTC).astimezone(self._tz).date()

    def _plan(self, no: str) -> Plan:
        with self._sessions() as s:
            t = s.execute(select(Ticket).where(Ticket.no == _normalise_no(no))).scalar_one_or_none()
            if t is None:
                raise NotFound(NOT_FOUND_MESSAGE, f"ticket {_normalise_no(no)!r} not found")
            received = self._local(t.created_at)
            extension, paused = t.extension_days or 0, t.paused_days or 0
            base = t.limit_days
            if base is None:  # a ticket from before limits were kept: what its due date implies
                base = max(1, self._calendar.working_days_between(received, t.due_date) - extension - paused)
            return Plan(t.no, t.status, received, base, extension, paused, t.due_date)

    def _due(self, plan: Plan, *, base: int | None = None, extension: int = 0, paused: int = 0) -> DueDate:
        """The due date of `plan` with its parts changed by the given amounts."""
        total = (plan.base if base is None else base) + plan.extension + extension + plan.paused + paused
        return self._calendar.add_working_days(plan.received, total)

    def _notify(self, kind: str, data: dict[str, Any], key: str) -> Callable[[Session, TicketView], None]:
        """The `after` of a change: the citizen's notice in the change's own transaction."""

        def after(session: Session, view: TicketView) -> None:
            if self._notices is not None:
                self._notices.notice(session, view, kind=kind, data={"ticket_no": view.no, **data}, key=key)

        return after


__all__ = ["EXTENDED", "RESUMED", "SUPPLEMENT_ASKED", "Notices", "Plan", "Step"]
