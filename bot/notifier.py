"""What the outbox sends, and for which events: `TicketNotices` is the ticket service's `Notifier`
(a staff reply becomes one outbox row in the reply's own transaction, keyed by ticket and version so
that no reply is queued twice) and its `Notices` (延期 approved, 补正 asked, the clock restarted: one
row each, keyed by the request); `spooled_ticket_notice` queues the number of a ticket that was left
while the database was away; `render_delivery` turns a row's data into the one `Reply` a channel
sends (text from `bot.texts`, notice fields as data for WeChat), for the ticket kinds and the
subscription kinds (`sub_policy`, `sub_faq`, `answer_published`, queued by bot/subscriptions.py);
`record_outcome` writes each attempt of a ticket reply back onto the ticket's history. A channel raises `PushImpossible` for a
push that no retry can fix (the outbox records it once and stops).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot import texts
from bot.conversation import Reply

if TYPE_CHECKING:
    from bot.pipeline.outbox import DeliveryView, Outbox
    from handoff.tickets import TicketService, TicketView

TICKET_REPLY = "ticket_reply"
TICKET_OPENED = "ticket_opened"  # a ticket left during a database outage, opened afterwards
HOTLINE_TICKET = "hotline_ticket"  # a new ticket for the 12345 hotline system (bot/channels/hotline.py)
STAFF_MAIL = "staff_mail"  # a digest of staff notifications, channel "email" (bot/staffnotify.py)
# time-limit notices (handoff.tickets.timing): 延期 approved, 补正 requested, the clock restarted
TICKET_EXTENDED, TICKET_SUPPLEMENT, TICKET_RESUMED = "ticket_extended", "ticket_supplement", "ticket_resumed"
# subscription pushes and "your question now has an answer" (bot/subscriptions.py)
SUB_POLICY, SUB_FAQ, ANSWER_PUBLISHED = "sub_policy", "sub_faq", "answer_published"
SUBSCRIPTION_KINDS = (SUB_POLICY, SUB_FAQ, ANSWER_PUBLISHED)
TICKET_INTERIM = "ticket_interim"  # an interim reply (阶段性答复): the ticket stays open
TICKET_MERGED = "ticket_merged"  # the kept ticket's answer to the citizen of a merged duplicate


class PushImpossible(Exception):
    """A push that cannot succeed by retrying; the reason is recorded."""


class TicketNotices:
    """handoff.tickets.Notifier on the durable outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def notice(
        self, session: Session, ticket: TicketView, *, kind: str, data: dict[str, Any], key: str
    ) -> None:
        """One later message of `kind` to the ticket's own citizen and channel (also
        handoff.tickets.timing.Notices: the time-limit notices)."""
        self.outbox.enqueue(
            session, kind=kind, channel=ticket.channel, user_id=ticket.user_ref, data=data, key=key
        )

    def enqueue(self, session: Session, ticket: TicketView) -> None:
        data = {"ticket_no": ticket.no, "department": ticket.department, "reply": ticket.reply or ""}
        self.notice(
            session, ticket, kind=TICKET_REPLY, data=data, key=f"{TICKET_REPLY}:{ticket.no}:v{ticket.version}"
        )

    def enqueue_interim(self, session: Session, ticket: TicketView, text: str) -> None:
        data = {"ticket_no": ticket.no, "department": ticket.department, "text": text}
        key = f"{TICKET_INTERIM}:{ticket.no}:v{ticket.version}"
        self.notice(session, ticket, kind=TICKET_INTERIM, data=data, key=key)

    def enqueue_merged(self, session: Session, ticket: TicketView, merged: TicketView) -> None:
        """The kept `ticket`'s answer to the citizen of the `merged` duplicate."""
        data = {
            "ticket_no": merged.no,
            "kept_no": ticket.no,
            "department": ticket.department,
            "reply": ticket.reply or "",
        }
        key = f"{TICKET_MERGED}:{merged.no}:{ticket.no}:v{ticket.version}"
        self.notice(session, merged, kind=TICKET_MERGED, data=data, key=key)


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
    if d.kind in (TICKET_EXTENDED, TICKET_SUPPLEMENT, TICKET_RESUMED):
        return Reply(
            "status", _time_limit_text(d.kind, d.data), ticket_no=str(d.data.get("ticket_no") or "") or None
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
    if d.kind == HOTLINE_TICKET:  # the webhook body: compact JSON of the row's data, keys sorted
        body = json.dumps(d.data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return Reply("hotline", body, ticket_no=str(d.data.get("ticket_no") or "") or None)
    if d.kind == STAFF_MAIL:
        from bot.staffnotify import render_staff_mail  # it imports the channels, which import this module

        return render_staff_mail(d.data)
    if d.kind in SUBSCRIPTION_KINDS:
        text = texts.subscription_push(d.kind, d.data, chat=d.channel != "email")
        notice = texts.subscription_notice(d.data)
        if d.channel == "email":  # a relay partner's mail (bot/channels/email.py): subject and footer
            title = notice.get("title") or text.split("\n", 1)[0]
            notice = {**notice, "subject": texts.say("push.email_subject", title=title)}
            text += "\n\n" + texts.say("push.email_footer", tags=notice.get("department") or "")
        return Reply("text", text, notice=notice)
    raise PushImpossible(f"unknown delivery kind {d.kind!r}")


def _time_limit_text(kind: str, data: dict[str, Any]) -> str:
    def day(field: str) -> str:
        return texts.date_text(dt.date.fromisoformat(str(data[field])))

    no = str(data.get("ticket_no") or "")
    if kind == TICKET_EXTENDED:
        return texts.say("notice.extended", no=no, due=day("due_date"), reason=str(data.get("reason") or ""))
    if kind == TICKET_SUPPLEMENT:
        return texts.say(
            "notice.supplement", no=no, request=str(data.get("request") or ""), deadline=day("deadline")
        )
    key = {"limit": "notice.resumed_limit", "staff": "notice.resumed_staff"}.get(
        str(data.get("via")), "notice.resumed"
    )
    return texts.say(key, no=no, due=day("due_date"))


def record_outcome(tickets: TicketService) -> Callable[[DeliveryView, bool, str | None], None]:
    """The outbox's outcome callback: each attempt of a ticket reply as a delivery event on the ticket."""

    def record(d: DeliveryView, ok: bool, error: str | None) -> None:
        if d.kind in (TICKET_REPLY, TICKET_MERGED):  # the merged ticket's own number
            tickets.record_delivery(
                str(d.data.get("ticket_no")), channel=d.channel, ok=ok, error=error, attempt=d.attempts
            )

    return record


__all__ = [
    "HOTLINE_TICKET",
    "STAFF_MAIL",
    "PushImpossible",
    "TicketNotices",
    "record_outcome",
    "render_delivery",
    "spooled_ticket_notice",
]
