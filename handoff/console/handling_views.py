"""What the console pages show of ticket handling (handoff/console/routes/handling.py): the ticket
page's duplicate hints, merged tickets, interim replies and categories (`handling_context`), and
whom a user may assign tickets to in bulk (`assignees`)."""

from typing import Any

from handoff.console.auth import User
from handoff.console.deps import Console, Staff, visible_departments
from handoff.tickets import EventView, TicketView
from handoff.tickets.duplicates import find_duplicates
from handoff.tickets.records import CATEGORIES, MERGED


def assignees(console: Console, user: User) -> list[User]:
    """Whom this user may assign tickets to in bulk: staff themselves; a supervisor any active
    staff member or supervisor."""
    if user.role == "staff":
        return [user]
    if user.role != "supervisor":
        return []
    return [u for u in console.accounts.users() if u.active and u.role in ("staff", "supervisor")]


def handling_context(
    console: Console, staff: Staff, t: TicketView, events: list[EventView]
) -> dict[str, Any]:
    """What the ticket page shows of categories, interim replies, duplicates and merges."""
    duplicates = find_duplicates(
        console.sessions,
        t,
        similarity=console.kb.matcher.similarity,
        threshold=console.config.duplicate_similarity,
        departments=visible_departments(staff.user),
    )
    return {
        "categories": CATEGORIES,
        "interims": [e for e in events if e.action == "interim"],
        "duplicates": [d for d in duplicates if staff.user.may_read_ticket(d.ticket.department)],
        "merged_here": console.tickets.merged_tickets(t.no),
        "is_merged": t.status == MERGED,
    }
