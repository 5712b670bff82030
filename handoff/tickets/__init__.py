"""The ticket lifecycle (政策留言): open from a conversation, assign, reply, close, reopen, transfer,
rate, publish, list, and the audit trail of every change.

`TicketService` owns the `ticket`, `ticket_event` and `ticket_counter` tables. Every write is one
transaction (a ticket is stored completely or the caller gets an exception) and writes a
`TicketEvent`. Every text accepted is cleaned of invisible format characters
(`handoff.privacy.clean_text`); texts (question, transcript, notes, reasons, delivery errors,
published texts) are masked with `handoff.privacy.mask` before they are stored or logged; only the
contact fields, given after explicit consent, are kept in clear. Nothing that still shows a run of
15 or more digits after masking is published. Ticket numbers are ``<prefix><local date>-<sequence>``
from a per-day counter row incremented atomically (an upsert), so concurrent workers on
PostgreSQL never share a number. Staff changes use optimistic locking through the `version`
column. A reply hands the ticket to a `Notifier` inside the reply's own transaction (bot's durable
outbox); the push happens later, outside the staff member's request, and each attempt comes back as
a delivery event. Time limits beyond the opening (per-category limits, category changes, 延期 and 补正)
are handoff/tickets/limits.py, timing.py, extensions.py and supplements.py (mixins of the service).
"""

from handoff.tickets.records import (
    ACTION_LABELS,
    CLOSED,
    CONFLICT_MESSAGE,
    CONSENT_TEXT,
    IN_PROGRESS,
    MAX_PAGE,
    OPEN_STATUSES,
    PENDING,
    RATINGS,
    REPLIED,
    STATUSES,
    SUPPLEMENT,
    EventView,
    Notifier,
    Rating,
    Status,
    TicketView,
)
from handoff.tickets.service import TicketService

__all__ = [
    "ACTION_LABELS",
    "CLOSED",
    "CONFLICT_MESSAGE",
    "CONSENT_TEXT",
    "IN_PROGRESS",
    "MAX_PAGE",
    "OPEN_STATUSES",
    "PENDING",
    "RATINGS",
    "REPLIED",
    "STATUSES",
    "SUPPLEMENT",
    "EventView",
    "Notifier",
    "Rating",
    "Status",
    "TicketService",
    "TicketView",
]
