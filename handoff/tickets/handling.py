"""How staff work a ticket beyond answering it (`HandlingMethods`, a base class of `TicketService`):
send an interim reply (阶段性答复: the citizen is told through the
notifier's outbox, the ticket stays open and unanswered), and merge a duplicate into the ticket that
is kept (合并: the duplicate becomes 已合并 and points to it; its citizen gets the kept ticket's answer,
once per citizen, when it is answered, or at once if it already is). Each is one transaction with a
ticket event, as every change of `TicketService`. (The category change moves the due date, so it
lives with the time limits: `handoff.tickets.extensions`.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.models import Ticket, TicketEvent
from handoff.privacy import mask
from handoff.tickets.records import (
    CLOSED,
    MAX_REPLY,
    MERGED,
    OPEN_STATUSES,
    REPLIED,
    Notifier,
    TicketView,
    _view,
)
from handoff.tickets.rules import _actor, _normalise_no, _required
from knowledge.errors import InvalidInput

MERGEABLE = OPEN_STATUSES  # a duplicate is merged before it is answered


@dataclass
class _Change:
    """What a change records (the shape `TicketService._update` reads: action and detail)."""

    action: str
    detail: dict[str, Any]


class HandlingMethods:
    """Interim reply and merge over `TicketService._update` (same transaction rules)."""

    _notifier: Notifier | None
    _update: Callable[..., TicketView]
    _require: Callable[[Ticket, Sequence[str], str], None]
    _load: Callable[..., Ticket]

    def interim_reply(
        self, no: str, *, staff: str, text: str, expected_version: int | None = None
    ) -> TicketView:
        """A holding message (e.g. 正在核实) to the citizen: queued through the notifier in the same
        transaction; the status, the reply and the due date do not change."""
        staff = _actor(staff)
        body = mask(_required(text, field="reply", user_message="请填写阶段性答复内容", max_len=MAX_REPLY))

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, OPEN_STATUSES, "发送阶段性答复")
            return _Change("interim", {"text": body})

        notifier = self._notifier

        def after(s: Session, view: TicketView) -> None:
            if notifier is not None:
                notifier.enqueue_interim(s, view, body)

        return self._update(no, actor=staff, expected_version=expected_version, change=change, after=after)

    def merge(self, no: str, *, into: str, by: str, expected_version: int | None = None) -> TicketView:
        """Merge the duplicate `no` into the kept ticket `into`; returns the merged ticket.

        Both tickets get an event. The kept ticket must not itself be merged; the duplicate must
        still be open. If the kept ticket is already answered, the duplicate's citizen gets that
        answer now (through the notifier, in this transaction)."""
        by = _actor(by)
        target_no = _normalise_no(into)
        if not target_no:
            raise InvalidInput("请填写要保留的留言编号", "merge without a target")
        if target_no == _normalise_no(no):
            raise InvalidInput("不能将留言合并到它自己", f"ticket {target_no}: merge into itself")
        kept: dict[str, TicketView] = {}

        def change(t: Ticket, now: dt.datetime) -> _Change:
            self._require(t, MERGEABLE, "合并")
            target = self._load(t_session(t), target_no, for_update=True)
            if target.status == MERGED:
                raise InvalidInput(
                    f"留言 {target.no} 已合并到 {target.merged_into}，请合并到 {target.merged_into}",
                    f"ticket {target.no} is merged itself",
                )
            before = t.status
            t.status = MERGED
            t.merged_into = target.no
            t.closed_at = now
            t.published = False
            t_session(t).add(
                TicketEvent(ticket_id=target.id, at=now, actor=by, action="merged_in", detail={"from": t.no})
            )
            kept["view"] = _view(target, now.date())
            return _Change("merge", {"into": target.no, "from": before})

        notifier = self._notifier

        def after(s: Session, view: TicketView) -> None:
            target = kept["view"]
            if notifier is None or not target.reply or target.status not in (REPLIED, CLOSED):
                return  # answered later: `_notify_merged` runs with that reply
            if not _told_already(s, target, view):
                notifier.enqueue_merged(s, target, view)

        return self._update(no, actor=by, expected_version=expected_version, change=change, after=after)

    def _notify_merged(self, s: Session, kept: TicketView) -> None:
        """After a reply of `kept` (same transaction): its answer to each citizen of a ticket merged
        into it, once per citizen (channel and user) and not to the kept ticket's own citizen."""
        notifier = self._notifier
        if notifier is None:
            return
        rows = (
            s.execute(
                select(Ticket)
                .where(Ticket.merged_into == kept.no, Ticket.status == MERGED)
                .order_by(Ticket.created_at, Ticket.id)
            )
            .scalars()
            .all()
        )
        seen = {(kept.channel, kept.user_ref)}
        for t in rows:
            if (t.channel, t.user_ref) in seen:
                continue
            seen.add((t.channel, t.user_ref))
            notifier.enqueue_merged(s, kept, _view(t, dt.date.today()))

    def merged_tickets(self, no: str) -> list[TicketView]:
        """The tickets merged into `no`, oldest first."""
        sessions = self._sessions  # type: ignore[attr-defined]
        with sessions() as s:
            rows = (
                s.execute(
                    select(Ticket)
                    .where(Ticket.merged_into == _normalise_no(no))
                    .order_by(Ticket.created_at, Ticket.id)
                )
                .scalars()
                .all()
            )
            return [_view(t, dt.date.today()) for t in rows]


def _told_already(s: Session, kept: TicketView, merged: TicketView) -> bool:
    """Whether the citizen of `merged` already has `kept`'s answer: it is their own ticket, or
    another of their tickets was merged into it before."""
    if (kept.channel, kept.user_ref) == (merged.channel, merged.user_ref):
        return True
    other = s.execute(
        select(Ticket.id).where(
            Ticket.merged_into == kept.no,
            Ticket.id != merged.id,
            Ticket.channel == merged.channel,
            Ticket.user_ref == merged.user_ref,
        )
    ).first()
    return other is not None


def t_session(t: Ticket) -> Session:
    """The session a loaded ticket belongs to (the change's own transaction)."""
    s = Session.object_session(t)
    assert s is not None
    return s
