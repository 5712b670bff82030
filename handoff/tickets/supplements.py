"""补正 (`SupplementMethods`, part of `TicketService` through `TimeLimitMethods`): the handler asks the
citizen for more information (the request goes to the citizen through the outbox) and the ticket's
clock stops (status 待补正). It starts again when the citizen answers — in the same conversation
(`awaiting_supplement` tells the inbound pipeline which ticket the next message belongs to) or on the
public board with the ticket's 查询码 — when staff resume it, or when the 补正 limit
(`POLICYBOT_SUPPLEMENT_LIMIT_DAYS` working days after the request) has passed (`expire_supplements`,
a daily job): then the ticket is handled on what it has, as a 留言 office does, and the history says so.
On resumption the due date moves by exactly the working days paused (those after the day of the
request up to and including the day it resumes: an answer on the same day pauses nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from handoff.models import AuditEntry, Ticket, TicketSupplement
from handoff.privacy import mask
from handoff.tickets.records import IN_PROGRESS, MAX_NOTE, MAX_QUESTION, OPEN_STATUSES, SUPPLEMENT, TicketView
from handoff.tickets.rules import _actor, _normalise_no, _required
from handoff.tickets.timing import RESUMED, SUPPLEMENT_ASKED, Plan, Step, _TimingBase
from knowledge.errors import Conflict, InvalidInput, NotFound

VIAS = ("chat", "board", "staff", "limit")
AUDITED = {"chat": "supplement_chat", "limit": "supplement_expired"}  # audit actions of these resumptions


@dataclass(frozen=True)
class SupplementView:
    id: int
    status: str  # waiting / answered / expired / resumed
    request: str
    requested_by: str
    requested_at: dt.datetime
    paused_on: dt.date
    deadline: dt.date
    answer: str | None
    via: str | None
    resumed_at: dt.datetime | None
    paused_days: int | None
    due_before: dt.date
    due_after: dt.date | None


def _supplement_view(r: TicketSupplement) -> SupplementView:
    return SupplementView(
        r.id,
        r.status,
        r.request,
        r.requested_by,
        r.requested_at.replace(tzinfo=dt.UTC),
        r.paused_on,
        r.deadline,
        r.answer,
        r.via,
        r.resumed_at.replace(tzinfo=dt.UTC) if r.resumed_at else None,
        r.paused_days,
        r.due_before,
        r.due_after,
    )


def _waiting(t: Ticket) -> TicketSupplement | None:
    s = object_session(t)
    assert s is not None
    return s.execute(
        select(TicketSupplement).where(
            TicketSupplement.ticket_id == t.id, TicketSupplement.status == "waiting"
        )
    ).scalar_one_or_none()


class SupplementMethods(_TimingBase):
    def request_supplement(
        self, no: str, *, by: str, text: str, expected_version: int | None = None
    ) -> TicketView:
        """Ask the citizen for more information: 待补正, the clock stops; the request is queued to the
        citizen's channel in the same transaction."""
        by = _actor(by)
        body = _required(text, field="note", user_message="请填写需要留言人补充的内容", max_len=MAX_NOTE)
        plan = self._plan(no)
        today = self._today()
        deadline = self._calendar.add_working_days(today, self._supplement_limit).day
        made: dict[str, int] = {}

        def change(t: Ticket, now: dt.datetime) -> Step:
            self._require(t, OPEN_STATUSES, "要求补正")
            s = object_session(t)
            assert s is not None
            row = TicketSupplement(
                ticket_id=t.id,
                status="waiting",
                request=mask(body),
                requested_by=by,
                requested_at=now,
                paused_on=today,
                deadline=deadline,
                resume_status=IN_PROGRESS,
                due_before=t.due_date,
            )
            s.add(row)
            s.flush()
            made["id"] = row.id
            before, t.status = t.status, SUPPLEMENT
            t.assigned_to = t.assigned_to or by
            return Step(
                "supplement_request",
                {"id": row.id, "text": mask(body), "deadline": deadline.isoformat(), "from": before},
            )

        def after(session: Any, view: TicketView) -> None:
            data = {"request": body, "deadline": deadline.isoformat()}
            self._notify(SUPPLEMENT_ASKED, data, f"{SUPPLEMENT_ASKED}:{made['id']}")(session, view)

        return self._update(plan.no, actor=by, expected_version=expected_version, change=change, after=after)

    def supply(
        self, no: str, *, text: str, via: str, channel: str | None = None, user_ref: str | None = None
    ) -> TicketView:
        """The citizen's 补正: attached to the ticket, the clock runs again. `channel`/`user_ref`, when
        given (a chat message), must be the ticket's own; the board checks the 查询码 before calling."""
        answer = _required(text, field="question", user_message="请填写补充内容", max_len=MAX_QUESTION)
        if via not in ("chat", "board"):
            raise ValueError(f"unknown supplement channel {via!r}")
        if channel is not None:
            t = self.get_own(no, channel, user_ref or "")
            no = t.no
        return self._resume(no, via=via, actor="citizen", answer=answer, notify=via != "chat")

    def get_own(self, no: str, channel: str, user_ref: str) -> Ticket:
        with self._sessions() as s:
            t = s.execute(select(Ticket).where(Ticket.no == _normalise_no(no))).scalar_one_or_none()
            if t is None or t.channel != channel or t.user_ref != user_ref:
                raise NotFound("未找到该留言，请核对留言编号", f"ticket {no!r} not this user's")
            s.expunge(t)
            return t

    def resume(self, no: str, *, by: str, reason: str) -> TicketView:
        """Staff restart the clock without the citizen's answer (e.g. the information came by phone)."""
        by = _actor(by)
        why = _required(reason, field="reason", user_message="请填写恢复计时的原因", max_len=MAX_NOTE)
        return self._resume(no, via="staff", actor=by, answer=why, notify=True)

    def expire_supplements(self) -> list[str]:
        """Resume every ticket whose 补正 limit has passed (the day after its deadline); the numbers."""
        today = self._today()
        with self._sessions() as s:
            numbers = list(
                s.execute(
                    select(Ticket.no)
                    .join(TicketSupplement, TicketSupplement.ticket_id == Ticket.id)
                    .where(TicketSupplement.status == "waiting", TicketSupplement.deadline < today)
                    .order_by(Ticket.id)
                ).scalars()
            )
        done = []
        for no in numbers:
            try:
                self._resume(no, via="limit", actor="system", answer=None, notify=True)
                done.append(no)
            except (Conflict, InvalidInput):  # answered or resumed meanwhile
                continue
        return done

    def _resume(self, no: str, *, via: str, actor: str, answer: str | None, notify: bool) -> TicketView:
        plan = self._plan(no)
        waiting = self._waiting_row(plan)
        today = self._today()
        paused = max(0, self._calendar.working_days_between(waiting.paused_on, today))
        due = self._due(plan, paused=paused)
        status = {"chat": "answered", "board": "answered", "limit": "expired", "staff": "resumed"}[via]

        def change(t: Ticket, now: dt.datetime) -> Step:
            row = _waiting(t)
            if t.status != SUPPLEMENT or row is None or row.id != waiting.id:
                raise InvalidInput("该留言当前不在待补正状态", f"ticket {t.no}: not waiting for a supplement")
            plan.same(t)
            text = mask(answer) if answer is not None else None
            row.status, row.answer, row.via, row.resumed_at = status, text, via, now
            row.paused_days, row.due_after = paused, due.day
            t.status, t.paused_days = row.resume_status, (t.paused_days or 0) + paused
            before, t.due_date, t.due_warnings = t.due_date, due.day, list(due.warnings)
            detail: dict[str, Any] = {
                "id": row.id,
                "via": via,
                "paused_days": paused,
                "due_date": [before.isoformat(), due.day.isoformat()],
            }
            if text is not None:
                detail["text"] = text
            if via == "limit":
                detail["deadline"] = row.deadline.isoformat()
            if via in AUDITED:  # no console or board request records these: the audit entry is written here
                session = object_session(t)
                assert session is not None
                session.add(
                    AuditEntry(
                        at=now,
                        actor=actor,
                        action=AUDITED[via],
                        target=t.no,
                        detail={k: v for k, v in detail.items() if k != "text"},
                    )
                )
            return Step("supplement_answer" if via in ("chat", "board") else "supplement_resume", detail)

        after = self._notify(
            RESUMED, {"due_date": due.day.isoformat(), "via": via}, f"{RESUMED}:{waiting.id}"
        )
        return self._update(
            plan.no, actor=actor, expected_version=None, change=change, after=after if notify else None
        )

    def _waiting_row(self, plan: Plan) -> SupplementView:
        with self._sessions() as s:
            row = s.execute(
                select(TicketSupplement)
                .join(Ticket, TicketSupplement.ticket_id == Ticket.id)
                .where(Ticket.no == plan.no, TicketSupplement.status == "waiting")
            ).scalar_one_or_none()
            if row is None or plan.status != SUPPLEMENT:
                raise InvalidInput(
                    "该留言当前不在待补正状态", f"ticket {plan.no}: not waiting for a supplement"
                )
            return _supplement_view(row)

    def awaiting_supplement(self, channel: str, user_ref: str) -> str | None:
        """The number of this channel user's ticket waiting for their 补正, if any (the newest)."""
        with self._sessions() as s:
            return s.execute(
                select(Ticket.no)
                .where(Ticket.channel == channel, Ticket.user_ref == user_ref, Ticket.status == SUPPLEMENT)
                .order_by(Ticket.id.desc())
                .limit(1)
            ).scalar_one_or_none()

    def supplements(self, no: str) -> list[SupplementView]:
        """The ticket's 补正 requests, oldest first."""
        with self._sessions() as s:
            rows = s.execute(
                select(TicketSupplement)
                .join(Ticket, TicketSupplement.ticket_id == Ticket.id)
                .where(Ticket.no == _normalise_no(no))
                .order_by(TicketSupplement.id)
            ).scalars()
            return [_supplement_view(r) for r in rows]


__all__ = ["VIAS", "SupplementMethods", "SupplementView"]
