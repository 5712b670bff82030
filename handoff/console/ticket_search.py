"""Ticket search for the queue page and `policybot tickets search` (one home): a ticket number, a
phone number (four or more digits, spaces and dashes ignored: the contact phone contains them), or
text (number, question, reply and, for those who may search contacts, the contact name). A search
that looks at contact data (a phone, or a name that matched) is audited as `contact_search`, like
a contact view; the caller shows phones masked (`handoff.privacy.mask`) until a ticket is opened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from handoff.console.audit import AuditLog
from handoff.privacy import mask
from handoff.tickets.queries import TicketQueries
from handoff.tickets.records import TicketView

Kind = Literal["no", "phone", "text"]
_NO = re.compile(r"^[A-Za-z]{1,20}\d{8}-\d{1,6}$")
_PHONE = re.compile(r"^\+?[\d\s-]{4,24}$")


@dataclass(frozen=True)
class Found:
    kind: Kind
    rows: list[TicketView]
    audited: bool  # contact data was searched (an audit entry was written)


def classify(q: str) -> tuple[Kind, str]:
    """What a search box entry is: ("no", NUMBER), ("phone", DIGITS) or ("text", TEXT)."""
    text = q.strip()
    if _NO.match(text):
        return "no", text.upper()
    if _PHONE.match(text):
        digits = re.sub(r"\D", "", text)
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if len(digits) >= 4:
            return "phone", digits
    return "text", text


def search(
    tickets: TicketQueries,
    audit: AuditLog,
    q: str,
    *,
    actor: str,
    role: str = "",
    ip: str = "",
    departments: Sequence[str] | None,
    contacts: bool,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Found:
    """Run one search over `departments` (None: all). `contacts`: the user may search contact data
    (phone, name); without it a phone-like entry is searched as text."""
    kind, value = classify(q)
    if kind == "phone" and not contacts:
        kind, value = "text", q.strip()
    common = {"status": status, "department": departments, "limit": limit, "offset": offset}
    if kind == "phone":
        rows = tickets.list(phone=value, **common)  # type: ignore[arg-type]
        _record(audit, actor, role, ip, "phone", value, rows)
        return Found(kind, rows, True)
    rows = tickets.list(text=value, names=contacts, **common)  # type: ignore[arg-type]
    by_name = contacts and any(value.lower() in (t.contact_name or "").lower() for t in rows)
    if by_name:
        _record(audit, actor, role, ip, "name", value, rows)
    return Found(kind, rows, by_name)


def _record(
    audit: AuditLog, actor: str, role: str, ip: str, kind: str, value: str, rows: list[TicketView]
) -> None:
    audit.record(
        "contact_search",
        actor=actor,
        role=role,
        ip=ip,
        target=mask(value)[:100],
        detail={"kind": kind, "results": len(rows), "tickets": [t.no for t in rows[:20]]},
    )


def masked_phone(t: TicketView) -> str:
    return mask(t.contact_phone) if t.contact_phone else ""
