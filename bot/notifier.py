"""What the outbox sends, and for which events: `TicketNotices` is the ticket service's `Notifier`
(a staff reply becomes one outbox row in the reply's own transaction, keyed by ticket and version so
that no reply is queued twice); `spooled_ticket_notice` queues the number of a ticket that was left
while the database was away; `render_delivery` turns a row's data into the one `Reply` a channel
sends (text from `bot.texts`, notice fields as data for WeChat); `record_outcome` writes each
attempt of a ticket reply back onto the ticket's history. A channel raises `PushImpossible` for a
push that no retry can fix (the outbox records it once and stops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot import texts
from bot.conversation import Reply

if TYPE_CHECKING:
    from bot.pipeline.outbox import DeliveryView, Outbox
    from handoff.tickets import TicketService, TicketView

TICKET_REPLY = "ticket_reply"
TICKET_OPENED = "ticket_opened"  # a ticket left during a database outage, opened afterwards
TICKET_INTERIM = "ticket_interim"  # an interim reply (阶段性答复): the ticket stays open
TICKET_MERGED = "ticket_merged"  # the kept ticket's answer to the citizen of a merged duplicate


class PushImpossible(Exception):
    """A push that cannot succeed by retrying; the reason is recorded."""


class TicketNotices:
    """handoff.tickets.Notifier on the durable outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def enqueue(self, session: Session, ticket: TicketView) -> None:
        data = {"ticket_no": ticket.no, "department": ticket.department, "reply": ticket.reply or ""}
        self.outbox.enqueue(
            session,
            kind=TICKET_REPLY,
            channel=ticket.channel,
            user_id=ticket.user_ref,
            data=data,
            key=f"{TICKET_REPLY}:{ticket.no}:v{ticket.version}",
        )

    def enqueue_interim(self, session: Session, ticket: TicketView, text: str) -> None:
        self.outbox.enqueue(
            session,
            kind=TICKET_INTERIM,
            channel=ticket.channel,
            user_id=ticket.user_ref,
            data={"ticket_no": ticket.no, "department": ticket.department, "text": text},
            key=f"{TICKET_INTERIM}:{ticket.no}:v{ticket.version}",
        )

    def enqueue_merged(self, session: Session, ticket: TicketView, merged: TicketView) -> None:
        data = {
            "ticket_no": merged.no,
            "kept_no": ticket.no,
            "department": ticket.department,
            "reply": ticket.reply or "",
        }
        self.outbox.enqueue(
            session,
            kind=TICKET_MERGED,
            channel=merged.channel,
            user_id=merged.user_ref,
            data=data,
            key=f"{TICKET_MERGED}:{merged.no}:{ticket.no}:v{ticket.version}",
        )


def spooled_ticket_notice(
    outbox: Outbox, session: Session, *, channel: str, user_id: str, reply: Reply
) -> None:
    """Queue the "your message is registered" reply of a ticket opened from the spool."""
    outbox.enqueue(
        session,
        kind=TICKET_OPENED,
        channel=channel,
        user_id=user_id,
        data={"ticket_no": reply.ticket_no, "reply": reply.as_dict()},
        key=f"{TICKET_OPENED}:{reply.ticket_no}",
    )


def render_delivery(d: DeliveryView) -> Reply:
    if d.kind == TICKET_REPLY:
        return Reply(
            "status",
            texts.ticket_reply(d.data),
            ticket_no=str(d.data.get("ticket_no") or "") or None,
            notice=texts.ticket_reply_notice(d.data),
            rate_ticket=str(d.data.get("ticket_no") or "") or None,  # rated where it arrives
        )
    if d.kind in (TICKET_INTERIM, TICKET_MERGED):
        interim = d.kind == TICKET_INTERIM
        no = str(d.data.get("ticket_no") or "")
        kept = str(d.data.get("kept_no") or no)
        summary = (
            texts.say("ticket.interim_summary", no=no)
            if interim
            else texts.say("ticket.merged_summary", kept=kept)
        )
        return Reply(
            "status",
            texts.ticket_interim(d.data) if interim else texts.ticket_merged_reply(d.data),
            ticket_no=no or None,
            notice=texts.ticket_reply_notice(d.data) | {"summary": summary},
        )
    if d.kind == TICKET_OPENED:
        fields = {k: v for k, v in dict(d.data.get("reply") or {}).items() if k in Reply.__dataclass_fields__}
        return Reply(**fields)
    raise PushImpossible(f"unknown delivery kind {d.kind!r}")


def record_outcome(tickets: TicketService) -> Callable[[DeliveryView, bool, str | None], None]:
    """The outbox's outcome callback: each attempt of a ticket reply as a delivery event on the ticket."""

    def record(d: DeliveryView, ok: bool, error: str | None) -> None:
        if d.kind in (TICKET_REPLY, TICKET_MERGED):  # the merged ticket's own number
            tickets.record_delivery(
                str(d.data.get("ticket_no")), channel=d.channel, ok=ok, error=error, attempt=d.attempts
            )

    return record


__all__ = ["PushImpossible", "TicketNotices", "record_outcome", "render_delivery", "spooled_ticket_notice"]
