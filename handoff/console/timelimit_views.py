"""What a ticket's page shows of its time limit, 延期 and 补正 (`time_limit_context`, used by the
ticket page of handoff/console/routes/tickets.py; the actions are handoff/console/routes/timelimits.py)."""

from typing import Any

from handoff.console.deps import Console, Staff
from handoff.tickets import OPEN_STATUSES, SUPPLEMENT, TicketView
from handoff.tickets.extensions import RUNNING
from handoff.tickets.limits import MAX_CATEGORY_LIMIT
from handoff.tickets.records import CATEGORIES

# The ticket history's lines of these events (ticket.html includes ticket_sla_event.html for them).
EVENT_ACTIONS = frozenset(
    {
        "category",
        "extension_request",
        "extension_approve",
        "extension_refuse",
        "supplement_request",
        "supplement_answer",
        "supplement_resume",
    }
)


def time_limit_context(console: Console, staff: Staff, t: TicketView) -> dict[str, Any]:
    """What the ticket page shows of the time limit, 延期 and 补正."""
    extensions = console.tickets.extensions(t.no)
    supplements = console.tickets.supplements(t.no)
    pending = next((e for e in extensions if e.status == "requested"), None)
    return {
        "extensions": extensions,
        "supplements": supplements,
        "pending": pending,
        "waiting": next((s for s in supplements if s.status == "waiting"), None),
        "categories": CATEGORIES,
        "running": t.status in RUNNING,
        "open": t.status in OPEN_STATUSES,
        "paused": t.status == SUPPLEMENT,
        "can_decide": staff.user.role == "supervisor" and pending is not None,
        "own_request": pending is not None and pending.requested_by == staff.user.username,
        "event_actions": EVENT_ACTIONS,
        "max_days": MAX_CATEGORY_LIMIT,
    }
