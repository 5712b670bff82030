"""Personal data held in tickets (PIPL): the retention purge, the export for a subject-access request
and the erasure on request.

A ticket keeps the citizen's name and phone in clear only for contacting them (`ticket.contact_*`,
given with consent); its texts are masked already. `purge_expired_contacts` clears the contact fields
of tickets closed (已办结) longer ago than the retention period, one transaction and one audit event
(`contact_purged`, without the personal data) per ticket; running it again changes nothing.
`tickets_for` finds the tickets of a phone number, a ticket number or a channel user, `export_tickets`
returns them with their events for a data export, and `erase_tickets` anonymises them: contact
fields cleared, the transcript emptied, the channel user id replaced by ``erased`` (in the ticket and
as the actor of its events), and an `erased` event recording what was removed, never the values.
Tickets stay (question, reply, dates): they are administrative records. Optimistic locking (the
`version` column) makes a concurrent staff change win; the purge then retries on its next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from handoff.models import Ticket, TicketEvent
from handoff.privacy import normalise_phone
from handoff.tickets import CLOSED
from handoff.tickets.records import MERGED
from knowledge.db import transaction
from knowledge.errors import InvalidInput
from knowledge.models import to_db_time

log = logging.getLogger(__name__)

PURGE_ACTION: Final = "contact_purged"
ERASE_ACTION: Final = "erased"
ERASED_REF: Final = "erased"
SYSTEM_ACTOR: Final = "system"


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


@dataclass(frozen=True)
class PurgeResult:
    """Tickets whose contact data was erased by one retention run."""

    cutoff: dt.datetime  # tickets closed before this (naive UTC)
    tickets: tuple[str, ...]  # their numbers

    @property
    def count(self) -> int:
        return len(self.tickets)


def purge_expired_contacts(
    sessions: sessionmaker[Session],
    now: dt.datetime,
    *,
    retention_days: int = 180,
    batch: int = 200,
    actor: str = SYSTEM_ACTOR,
) -> PurgeResult:
    """Clear name and phone of tickets closed more than `retention_days` before `now`.

    Idempotent: a ticket without contact data is never touched again. A ticket reopened meanwhile
    (no longer 已办结) keeps its contact data.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = to_db_time(now) - dt.timedelta(days=retention_days)
    db_now = to_db_time(now)
    done: list[str] = []
    last_id = 0
    while True:
        with sessions() as s:
            ids = list(
                s.scalars(
                    select(Ticket.id)
                    .where(
                        Ticket.id > last_id,
                        Ticket.status.in_((CLOSED, MERGED)),  # merged duplicates are finished too
                        Ticket.closed_at < cutoff,
                        or_(Ticket.contact_name.is_not(None), Ticket.contact_phone.is_not(None)),
                    )
                    .order_by(Ticket.id)
                    .limit(batch)
                )
            )
        for ticket_id in ids:
            no = _purge_one(
                sessions, ticket_id, cutoff=cutoff, now=db_now, actor=actor, retention_days=retention_days
            )
            if no is not None:
                done.append(no)
        if len(ids) < batch:
            break
        last_id = ids[-1]
    if done:
        log.info("contact_purge tickets=%d cutoff=%s", len(done), cutoff.isoformat())
    return PurgeResult(cutoff=cutoff, tickets=tuple(done))


def _purge_one(
    sessions: sessionmaker[Session],
    ticket_id: int,
    *,
    cutoff: dt.datetime,
    now: dt.datetime,
    actor: str,
    retention_days: int,
) -> str | None:
    try:
        with transaction(sessions) as s:
            t = s.execute(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).scalar_one_or_none()
            if (
                t is None
                or t.status not in (CLOSED, MERGED)
                or t.closed_at is None
                or t.closed_at >= cutoff
                or (t.contact_name is None and t.contact_phone is None)
            ):
                return None  # changed since it was selected
            fields = _clear_contact(t)
            t.updated_at = now
            s.add(
                TicketEvent(
                    ticket_id=t.id,
                    at=now,
                    actor=actor,
                    action=PURGE_ACTION,
                    detail={"reason": "retention", "retention_days": retention_days, "fields": fields},
                )
            )
            return t.no
    except StaleDataError:
        log.info("contact_purge_skipped ticket_id=%d (changed concurrently; next run)", ticket_id)
        return None


def _clear_contact(t: Ticket) -> list[str]:
    fields = []
    if t.contact_name is not None:
        fields.append("contact_name")
        t.contact_name = None
    if t.contact_phone is not None:
        fields.append("contact_phone")
        t.contact_phone = None
    return fields


# --- subject-access requests ---------------------------------------------------------------------


def tickets_for(
    sessions: sessionmaker[Session],
    *,
    phone: str | None = None,
    ticket_no: str | None = None,
    users: Iterable[tuple[str, str]] = (),
) -> list[int]:
    """Ids of the tickets that carry `phone`, have number `ticket_no`, or belong to one of `users`
    ((channel, channel user id) pairs), in id order."""
    conditions: list[Any] = []
    if phone is not None:
        normalised = normalise_phone(phone)
        if normalised is None:
            raise InvalidInput(
                "手机号码格式不正确，请填写11位手机号码或带区号的固定电话", "privacy request: invalid phone"
            )
        conditions.append(Ticket.contact_phone == normalised)
    if ticket_no is not None:
        no = ticket_no.strip().upper()
        if not no:
            raise InvalidInput("请填写留言编号", "privacy request: empty ticket number")
        conditions.append(Ticket.no == no)
    for channel, user_id in users:
        conditions.append((Ticket.channel == channel) & (Ticket.user_ref == user_id))
    if not conditions:
        return []
    with sessions() as s:
        return list(s.scalars(select(Ticket.id).where(or_(*conditions)).order_by(Ticket.id)))


def ticket_users(sessions: sessionmaker[Session], ticket_ids: Sequence[int]) -> list[tuple[str, str]]:
    """The distinct (channel, channel user id) pairs of these tickets (erased ones left out)."""
    if not ticket_ids:
        return []
    with sessions() as s:
        rows = s.execute(select(Ticket.channel, Ticket.user_ref).where(Ticket.id.in_(list(ticket_ids)))).all()
    return sorted({(c, u) for c, u in rows if u != ERASED_REF})


def export_tickets(sessions: sessionmaker[Session], ticket_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The tickets with everything stored about them (contact data in clear) and their events."""
    if not ticket_ids:
        return []
    out: list[dict[str, Any]] = []
    with sessions() as s:
        tickets = s.scalars(select(Ticket).where(Ticket.id.in_(list(ticket_ids))).order_by(Ticket.id)).all()
        for t in tickets:
            events = s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == t.id)
                .order_by(TicketEvent.at, TicketEvent.id)
            ).all()
            out.append(
                {
                    "no": t.no,
                    "status": t.status,
                    "channel": t.channel,
                    "user_ref": t.user_ref,
                    "department": t.department,
                    "question": t.question,
                    "transcript": list(t.transcript or []),
                    "contact_name": t.contact_name,
                    "contact_phone": t.contact_phone,
                    "consent_at": _iso(t.consent_at),
                    "created_at": _iso(t.created_at),
                    "due_date": _iso(t.due_date),
                    "reply": t.reply,
                    "replied_at": _iso(t.replied_at),
                    "closed_at": _iso(t.closed_at),
                    "rating": t.rating,
                    "rated_at": _iso(t.rated_at),
                    "published": bool(t.published),
                    "publish_question": t.publish_question,
                    "publish_reply": t.publish_reply,
                    "events": [
                        {
                            "at": _iso(e.at),
                            "actor": e.actor,
                            "action": e.action,
                            "detail": dict(e.detail or {}),
                        }
                        for e in events
                    ],
                }
            )
    return out


def erase_tickets(
    s: Session,
    ticket_ids: Sequence[int],
    *,
    now: dt.datetime,
    actor: str,
    request: str,
) -> list[str]:
    """Anonymise these tickets inside the caller's transaction (see the module docstring).

    `request` names the kind of request ("phone", "ticket", "user") for the audit event; it must not
    be the personal data itself. Returns the ticket numbers changed.
    """
    db_now = to_db_time(now)
    changed: list[str] = []
    if not ticket_ids:
        return changed
    tickets = s.scalars(
        select(Ticket).where(Ticket.id.in_(list(ticket_ids))).order_by(Ticket.id).with_for_update()
    ).all()
    for t in tickets:
        fields = _clear_contact(t)
        if t.transcript:
            fields.append("transcript")
            t.transcript = []
        if t.user_ref != ERASED_REF:
            fields.append("user_ref")
            old_actor = f"{t.channel}:{t.user_ref}"[:100]
            for e in s.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == t.id, TicketEvent.actor == old_actor)
            ):
                e.actor = f"{t.channel}:{ERASED_REF}"
            t.user_ref = ERASED_REF
        if not fields:
            continue  # erased before: nothing left to remove
        t.updated_at = db_now
        s.add(
            TicketEvent(
                ticket_id=t.id,
                at=db_now,
                actor=actor[:100],
                action=ERASE_ACTION,
                detail={"reason": "request", "request": request, "fields": fields},
            )
        )
        changed.append(t.no)
    s.flush()
    return changed


__all__ = [
    "ERASED_REF",
    "ERASE_ACTION",
    "PURGE_ACTION",
    "PurgeResult",
    "erase_tickets",
    "export_tickets",
    "purge_expired_contacts",
    "ticket_users",
    "tickets_for",
]
