"""`TicketService`: the ticket lifecycle over one database (open, assign, reply, close, reopen,
transfer, rate, publish, list) with an audit event for every change; see the package docstring."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from handoff.models import Department, Ticket, TicketEvent
from handoff.privacy import PUBLIC_DIGIT_RUN, long_digit_run, mask
from handoff.sla import WorkCalendar
from handoff.tickets.extensions import Notices, TimeLimitMethods
from handoff.tickets.handling import HandlingMethods
from handoff.tickets.limits import CategoryLimits
from handoff.tickets.promotion import PromotionMethods
from handoff.tickets.queries import TicketQueries
from handoff.tickets.records import (
    _RETRIES,
    CLOSED,
    CONFLICT_MESSAGE,
    IN_PROGRESS,
    MAX_LIMIT,
    MAX_NOTE,
    MAX_QUESTION,
    MAX_REPLY,
    NOT_FOUND_MESSAGE,
    OPEN_STATUSES,
    PENDING,
    RATINGS,
    REPLIED,
    EventView,
    Notifier,
    TicketView,
    _event_view,
    _view,
    next_day_number,
)
from handoff.tickets.rules import (
    _FIELD_NAMES,
    NewTicket,
    _actor,
    _department_from,
    _normalise_no,
    _required,
    clean_new_ticket,
)
from knowledge.db import transaction
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import CHINA_TZ, to_db_time

log = logging.getLogger("handoff.tickets")

# --- the service ---------------------------------------------------------------------------------


@dataclass
class _Change:
    """What a state change records: the event's action and detail."""

    action: str
    detail: dict[str, Any]


class TicketService(TicketQueries, PromotionMethods, TimeLimitMethods, HandlingMethods):
    """The ticket lifecycle over one database. Thread-safe; share one instance per process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        calendar: WorkCalendar,
        *,
        limits: Mapping[str, int] | None = None,
        default_limit: int = 5,
        default_department: str = "政务公开办公室",
        notifier: Notifier | None = None,
        prefix: str = "LY",
        clock: Callable[[], dt.datetime] | None = None,
        tz: dt.tzinfo = CHINA_TZ,
        category_limits: CategoryLimits | None = None,
        notices: Notices | None = None,
        supplement_limit: int = 10,
    ) -> None:
        limits = dict(limits or {})
        for dept, n in [*limits.items(), ("<default>", default_limit)]:
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_LIMIT:
                raise ValueError(
                    f"ticket time limit for {dept!r} must be 1..{MAX_LIMIT} working days, got {n!r}"
                )
        if not default_department.strip():
            raise ValueError("default_department must not be empty")
        if not prefix.isalnum() or not prefix.isascii() or len(prefix) > 20:
            raise ValueError(f"ticket number prefix must be 1-20 ASCII letters or digits, got {prefix!r}")
        self._sessions = sessions
        self._calendar = calendar
        self._limits = {k.strip(): v for k, v in limits.items()}
        self._default_limit = default_limit
        self._default_department = default_department.strip()
        self._notifier = notifier
        self._prefix = prefix.upper()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._tz = tz
        self._open_hooks: list[Callable[[Session, TicketView], None]] = []
        self._category_limits = category_limits  # the rest of the time limits: extensions.py
        self._notices = notices
        self._supplement_limit = supplement_limit

    def add_open_hook(self, hook: Callable[[Session, TicketView], None]) -> None:
        """Run `hook(session, ticket)` inside the transaction that stores each new ticket, e.g. bot's
        outbox row forwarding it to the 12345 hotline; no network calls in it."""
        self._open_hooks.append(hook)

    # --- time ----------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        """Aware UTC now (a naive clock value is taken as UTC)."""
        now = self._clock()
        return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)

    def _today(self) -> dt.date:
        return self._now().astimezone(self._tz).date()

    # --- opening -------------------------------------------------------------------------------

    def open(
        self,
        *,
        question: str,
        channel: str,
        user_ref: str,
        transcript: Sequence[Mapping[str, Any]] = (),
        department: str | None = None,
        contact_name: str | None = None,
        contact_phone: str | None = None,
        consent: bool = False,
        idempotency_key: str | None = None,
        matched: Sequence[Mapping[str, Any]] = (),
        category: str = "咨询",
        flag_reason: str | None = None,
    ) -> TicketView:
        """Store a new ticket (all or nothing) and return it.

        `category` is 咨询/投诉/建议/举报; `flag_reason` (e.g. 敏感词) opens it flagged for a supervisor.

        Contact fields need `consent` (the citizen accepted `CONSENT_TEXT`). The department is the
        given one, else the drafting unit (`unit`) of the nearest matched FAQ or policy, else the
        default. The same `idempotency_key` from the same user returns the ticket already made.
        """
        new = clean_new_ticket(
            question=question,
            channel=channel,
            user_ref=user_ref,
            transcript=transcript,
            department=department,
            contact_name=contact_name,
            contact_phone=contact_phone,
            consent=consent,
            idempotency_key=idempotency_key,
            matched=matched,
            category=category,
            flag_reason=flag_reason,
        )
        dept = new.department or _department_from(new.matched) or self._default_department
        if new.key is not None:
            existing = self._by_key(new.key, channel=new.channel, user_ref=new.user_ref)
            if existing is not None:
                return existing
        try:
            view = self._insert(new, dept)
        except IntegrityError:
            # A concurrent retry with the same key won the race: return its ticket.
            if new.key is not None:
                existing = self._by_key(new.key, channel=new.channel, user_ref=new.user_ref)
                if existing is not None:
                    return existing
            raise
        for warning in view.due_warnings:
            log.warning("ticket_due_warning no=%s warning=%s", view.no, warning)
        log.info(
            "ticket_opened no=%s channel=%s department=%s due=%s contact=%s",
            view.no,
            new.channel,
            dept,
            view.due_date.isoformat(),
            bool(new.name or new.phone),
        )
        return view

    def _insert(self, new: NewTicket, dept: str) -> TicketView:
        """One transaction: the day's number, the ticket (question masked) and its "open" event."""
        now = self._now()
        local = now.astimezone(self._tz)
        limit = self.limit_for(dept, new.category)
        due = self._calendar.add_working_days(local.date(), limit)
        db_now = to_db_time(now)
        with transaction(self._sessions) as s:
            # The counter upsert is the first write: on SQLite it takes the write lock before
            # anything else is read in this transaction.
            seq = next_day_number(s, f"{self._prefix}{local:%Y%m%d}")
            ticket = Ticket(
                no=f"{self._prefix}{local:%Y%m%d}-{seq:04d}",
                status=PENDING,
                question=mask(new.question),
                transcript=new.transcript,
                channel=new.channel,
                user_ref=new.user_ref,
                department=dept,
                matched=new.matched,
                contact_name=new.name,
                contact_phone=new.phone,
                consent_at=db_now if new.consent else None,
                due_date=due.day,
                due_warnings=list(due.warnings),
                created_at=db_now,
                updated_at=db_now,
                flagged=new.flag_reason is not None,
                flag_reason=new.flag_reason,
                category=new.category,
                published=False,
                verify_code=f"{secrets.randbelow(1_000_000):06d}",
                idempotency_key=new.key,
                limit_days=limit,
            )
            s.add(ticket)
            s.flush()
            s.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=db_now,
                    actor=f"{new.channel}:{new.user_ref}"[:100],
                    action="open",
                    detail={
                        "department": dept,
                        "limit_days": limit,
                        "due_date": due.day.isoformat(),
                        "due_warnings": list(due.warnings),
                        "contact": bool(new.name or new.phone),
                        "category": new.category,
                        "flag_reason": new.flag_reason,
                        "consent": bool(new.consent),
                        "matched": [m.get("id") for m in new.matched if m.get("id")],
                    },
                )
            )
            s.flush()
            view = _view(ticket, local.date())
            for hook in self._open_hooks:
                hook(s, view)
            return view

    def _by_key(self, key: str, *, channel: str, user_ref: str) -> TicketView | None:
        with self._sessions() as s:
            t = s.execute(select(Ticket).where(Ticket.idempotency_key == key)).scalar_one_or_none()
            if t is None:
                return None
            if t.channel != channel or t.user_ref != user_ref:
                raise Conflict(
                    "提交标识已被使用，请重新提交", f"idempotency key reused by another user: {key!r}"
                )
            return _view(t, self._today())

    # --- changes -------------------------------------------------------------------------------

    def _update(
        self,
        no: str,
        *,
        actor: str,
        expected_version: int | None,
        change: Callable[[Ticket, dt.datetime], _Change],
        after: Callable[[Session, TicketView], None] | None = None,
    ) -> TicketView:
        """Apply `change` to the ticket in one transaction with an audit event; `after` runs last in
        the same transaction (the outbox row of a reply).

        The row is locked on PostgreSQL; everywhere the UPDATE carries ``WHERE version = <read>``.
        A lost race is a Conflict when the caller named a version, else it is retried.
        """
        for _ in range(_RETRIES):
            try:
                with transaction(self._sessions) as s:
                    t = self._load(s, no, for_update=True)
                    if expected_version is not None and t.version != expected_version:
                        raise Conflict(
                            CONFLICT_MESSAGE,
                            f"ticket {t.no}: version {t.version} != expected {expected_version}",
                        )
                    now = self._now()
                    db_now = to_db_time(now)
                    result = change(t, db_now)
                    t.updated_at = db_now
                    s.add(
                        TicketEvent(
                            ticket_id=t.id, at=db_now, actor=actor, action=result.action, detail=result.detail
                        )
                    )
                    s.flush()
                    view = _view(t, now.astimezone(self._tz).date())
                    if after is not None:
                        after(s, view)
            except StaleDataError:
                if expected_version is not None:
                    raise Conflict(CONFLICT_MESSAGE, f"ticket {no!r} changed concurrently") from None
                continue
            log.info(
                "ticket_%s no=%s actor=%s status=%s version=%d",
                result.action,
                view.no,
                actor,
                view.status,
                view.version,
            )
            return view
        raise Conflict(CONFLICT_MESSAGE, f"ticket {no!r}: gave up after {_RETRIES} concurrent updates")

    @staticmethod
    def _require(t: Ticket, allowed: Sequence[str], what: str) -> None:
        if t.status not in allowed:
            raise InvalidInput(
                f"留言当前状态为“{t.status}”，不能{what}",
                f"ticket {t.no}: cannot {what} in status {t.status}",
            )

    def assign(
        self, no: str, *, staff: str, expected_version: int | None = None, by: str | None = None
    ) -> TicketView:
        """Accept (待受理 -> 办理中) or hand over to another staff member while 办理中; `by`: who
        assigned it when not the assignee (a supervisor's bulk assignment)."""
        staff = _actor(staff)
        actor = _actor(by) if by else staff

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, OPEN_STATUSES, "受理")
            previous, before = t.assigned_to, t.status
            t.assigned_to = staff
            t.status = IN_PROGRESS
            return _Change("assign", {"staff": staff, "previous": previous, "from": before})

        return self._update(no, actor=actor, expected_version=expected_version, change=change)

    def reply(self, no: str, *, staff: str, text: str, expected_version: int | None = None) -> TicketView:
        """Answer (-> 已答复). The notifier queues the message to the citizen in the same transaction;
        it is sent later, outside this call, and each attempt is recorded as a delivery event."""
        staff = _actor(staff)
        body = _required(text, field="reply", user_message="请填写答复内容", max_len=MAX_REPLY)

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, OPEN_STATUSES, "答复")
            first = t.reply is None
            t.reply = body
            t.replied_at = now
            t.replied_by = staff
            t.assigned_to = t.assigned_to or staff
            before, t.status = t.status, REPLIED
            return _Change("reply", {"text": mask(body), "first": first, "from": before})

        notifier = self._notifier

        def after(s: Session, view: TicketView) -> None:
            if notifier is not None:
                notifier.enqueue(s, view)
                self._notify_merged(s, view)  # the citizens of duplicates merged into it

        return self._update(no, actor=staff, expected_version=expected_version, change=change, after=after)

    def record_delivery(
        self, no: str, *, channel: str, ok: bool, error: str | None = None, attempt: int = 1
    ) -> EventView:
        """Record one delivery attempt of a reply (reported by the notifier's outbox). Does not change
        the ticket's version."""
        detail: dict[str, Any] = {"channel": channel[:20], "ok": bool(ok), "attempt": int(attempt)}
        if error:
            detail["error"] = mask(error)[:500]
        return self._append_event(no, actor="system", action="delivery", detail=detail)

    def add_note(self, no: str, *, by: str, text: str) -> EventView:
        """An internal staff note (masked); it does not change the ticket or its version."""
        by = _actor(by)
        body = _required(text, field="note", user_message="请填写备注内容", max_len=MAX_NOTE)
        return self._append_event(no, actor=by, action="note", detail={"text": mask(body)})

    def _append_event(self, no: str, *, actor: str, action: str, detail: dict[str, Any]) -> EventView:
        with transaction(self._sessions) as s:
            t = self._load(s, no)
            event = TicketEvent(
                ticket_id=t.id, at=to_db_time(self._now()), actor=actor, action=action, detail=detail
            )
            s.add(event)
            s.flush()
            view = _event_view(event)
        log.info("ticket_%s no=%s actor=%s", action, t.no, actor)
        return view

    def close(
        self, no: str, *, by: str, reason: str | None = None, expected_version: int | None = None
    ) -> TicketView:
        """办结. A ticket without a reply (spam, duplicate) can only be closed with a reason."""
        by = _actor(by)
        why = (reason or "").strip()

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, (PENDING, IN_PROGRESS, REPLIED), "办结")
            if t.status != REPLIED and not why:
                raise InvalidInput(
                    "留言尚未答复，办结时请填写原因", f"ticket {t.no}: closing without a reply needs a reason"
                )
            before, t.status = t.status, CLOSED
            t.closed_at = now
            detail: dict[str, Any] = {"from": before}
            if why:
                detail["reason"] = mask(why)[:MAX_NOTE]
            return _Change("close", detail)

        return self._update(no, actor=by, expected_version=expected_version, change=change)

    def reopen(self, no: str, *, by: str, reason: str, expected_version: int | None = None) -> TicketView:
        """Back to 办理中 from 已答复 or 已办结 (the previous reply stays until a new one replaces it)."""
        by = _actor(by)
        why = _required(reason, field="reason", user_message="请填写重新办理的原因", max_len=MAX_NOTE)

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, (REPLIED, CLOSED), "重新办理")
            before, t.status = t.status, IN_PROGRESS
            t.closed_at = None
            return _Change("reopen", {"from": before, "reason": mask(why)})

        return self._update(no, actor=by, expected_version=expected_version, change=change)

    def transfer(
        self, no: str, *, to_department: str, reason: str, by: str, expected_version: int | None = None
    ) -> TicketView:
        """Hand an open ticket to another department (an active row of the `department` table):
        back to 待受理 there, unassigned; the due date is recomputed with that department's limit
        from the creation time.

        The due date is computed before the write transaction opens: on a cold cache the calendar
        reads the holiday table, and on SQLite a second connection inside this one's write
        transaction would wait for the busy timeout (see `handoff.sla.WorkCalendar`)."""
        by = _actor(by)
        target = _required(to_department, field="department", user_message="请选择转办部门", max_len=200)
        why = _required(reason, field="reason", user_message="请填写转办原因", max_len=MAX_NOTE)
        with self._sessions() as s:
            active = s.execute(
                select(Department.active).where(Department.name == target)
            ).scalar_one_or_none()
            row = s.execute(
                select(Ticket.created_at, Ticket.category, Ticket.extension_days, Ticket.paused_days).where(
                    Ticket.no == _normalise_no(no)
                )
            ).first()
        if active is None:
            raise InvalidInput(
                f"部门“{target}”不存在，请从部门列表中选择（新部门须由管理员先在“部门管理”中添加）",
                f"transfer to unknown department {target!r}",
            )
        if not active:
            raise InvalidInput(
                f"部门“{target}”已停用，不能转办", f"transfer to inactive department {target!r}"
            )
        if row is None:
            raise NotFound(NOT_FOUND_MESSAGE, f"ticket {_normalise_no(no)!r} not found")
        created_local = row.created_at.replace(tzinfo=dt.UTC).astimezone(self._tz).date()  # never changes
        limit = self.limit_for(target, row.category)  # approved 延期 and finished 补正 pauses stay
        due = self._calendar.add_working_days(created_local, limit + row.extension_days + row.paused_days)

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, OPEN_STATUSES, "转办")
            if t.department == target:
                raise InvalidInput("转办部门与当前部门相同", f"ticket {t.no}: transfer to its own department")
            detail = {
                "from": t.department,
                "to": target,
                "reason": mask(why),
                "previous_assignee": t.assigned_to,
                "due_date": [t.due_date.isoformat(), due.day.isoformat()],
                "limit_days": limit,
            }
            t.department = target
            t.assigned_to = None
            t.status = PENDING
            t.due_date, t.due_warnings, t.limit_days = due.day, list(due.warnings), limit
            return _Change("transfer", detail)

        return self._update(no, actor=by, expected_version=expected_version, change=change)

    def rate(self, no: str, *, rating: str, verify_code: str | None = None) -> TicketView:
        """The citizen's rating, once per ticket, after a reply. 满意/基本满意 close a replied ticket;
        不满意 sends it back to 办理中 and flags it for a supervisor.

        `verify_code` is checked when given (public board); the channel layer, which knows the
        user, may omit it after checking that the ticket is the user's own.
        """
        if rating not in RATINGS:
            raise InvalidInput("评价应为“满意”“基本满意”或“不满意”", f"unknown rating {rating!r}")
        if verify_code is not None:
            self.lookup(no, verify_code)  # same NotFound as the public lookup

        def change(t: Ticket, now: dt.datetime) -> _Change:
            if t.rating is not None:
                raise InvalidInput("该留言已评价，感谢您的反馈", f"ticket {t.no}: already rated")
            self._require(t, (REPLIED, CLOSED), "评价（尚未答复）")
            before = t.status
            t.rating = rating
            t.rated_at = now
            if rating == "不满意":
                t.status = IN_PROGRESS
                t.flagged = True
                t.flag_reason = "不满意"
                t.closed_at = None
            elif t.status == REPLIED:
                t.status = CLOSED
                t.closed_at = now
            return _Change("rate", {"rating": rating, "from": before, "to": t.status})

        return self._update(no, actor="citizen", expected_version=None, change=change)

    def publish(
        self,
        no: str,
        *,
        by: str,
        question: str | None = None,
        reply: str | None = None,
        published: bool = True,
        expected_version: int | None = None,
    ) -> TicketView:
        """Show (or withdraw) a replied ticket on the public board; the texts (edited or the
        ticket's own) are stored masked. A text that still shows a number of 15 or more digits
        after masking (an order number, or a mistyped ID or card) is refused: InvalidInput."""
        by = _actor(by)
        q_in = (
            None
            if question is None
            else _required(
                question,
                field="publish_question",
                user_message="公开的留言内容不能为空",
                max_len=MAX_QUESTION,
            )
        )
        r_in = (
            None
            if reply is None
            else _required(
                reply, field="publish_reply", user_message="公开的答复内容不能为空", max_len=MAX_REPLY
            )
        )

        def change(t: Ticket, now: dt.datetime) -> _Change:
            if not published:
                if not t.published:
                    raise InvalidInput("该留言未公开", f"ticket {t.no}: not published")
                t.published = False
                return _Change("unpublish", {})
            self._require(t, (REPLIED, CLOSED), "公开（尚未答复）")
            public = {
                "publish_question": mask(q_in if q_in is not None else t.question),
                "publish_reply": mask(r_in if r_in is not None else (t.reply or "")),
            }
            for field, text in public.items():
                run = long_digit_run(text)
                if run is not None:
                    raise InvalidInput(
                        f"{_FIELD_NAMES[field]}中仍有连续{PUBLIC_DIGIT_RUN}位以上的数字（可能是身份证号码、银行卡号等），"
                        "请删除或改写后再公开",
                        f"ticket {t.no}: {field} shows a {sum(c.isdecimal() for c in run)}-digit number",
                    )
            t.publish_question = public["publish_question"]
            t.publish_reply = public["publish_reply"]
            t.published = True
            t.published_at = now
            return _Change("publish", {"question_edited": q_in is not None, "reply_edited": r_in is not None})

        return self._update(no, actor=by, expected_version=expected_version, change=change)
