"""How console pages handle a change the publish guard refused (knowledge.faqs.conflicts): the one
place that turns `PhrasingConflicts` into what a page shows (the conflicting phrasings in Chinese, and
for admins the 「我已了解以上冲突」 override that repeats the same request), and that runs a write with
that override: once without it, and only when that is refused and an admin confirmed, again with
it, so the audit entry lists exactly the conflicts that were overridden. Used by retire, restore, the
synonym sets and the import confirm (the FAQ save page has its own form-bound checkbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from handoff.console.deps import Console, Staff
from knowledge.faqs.conflicts import PhrasingConflict, PhrasingConflicts, confirmation_note

T = TypeVar("T")
SHOWN: Final = 50  # conflicts listed on a page
CONFIRM_ACTION: Final = "faq_conflicts_confirmed"


def may_override(staff: Staff) -> bool:
    return staff.user.role == "admin"


def override_wanted(staff: Staff, value: str) -> bool:
    """The override checkbox was ticked, by an admin (anyone else's tick is ignored)."""
    return value == "1" and may_override(staff)


def describe(conflicts: tuple[PhrasingConflict, ...] | list[PhrasingConflict]) -> list[str]:
    return [c.describe() for c in conflicts]


@dataclass(frozen=True)
class Refusal:
    """A refused change as a page shows it: what was not done, the conflicting phrasings, and (for
    admins) the form that repeats the request with the override."""

    title: str
    conflicts: list[str]
    action: str  # where the override form posts
    button: str  # its submit button, e.g. 仍然下线
    fields: Mapping[str, str] = field(default_factory=dict)  # hidden fields of the repeated request
    can_confirm: bool = False

    @property
    def shown(self) -> list[str]:
        return self.conflicts[:SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.conflicts) - SHOWN)


def refusal(
    exc: PhrasingConflicts | list[str],
    staff: Staff,
    *,
    title: str,
    action: str,
    button: str,
    fields: Mapping[str, str] | None = None,
) -> Refusal:
    lines = describe(list(exc.conflicts)) if isinstance(exc, PhrasingConflicts) else list(exc)
    return Refusal(title, lines, action, button, dict(fields or {}), may_override(staff))


def guarded_write(
    console: Console,
    staff: Staff,
    write: Callable[[bool], T],
    *,
    confirm: bool,
    target: str,
    via: str,
) -> T:
    """`write(confirm_conflicts)` without the override; when refused and `confirm` (an admin ticked
    the box), again with it, audited with the list. Raises PhrasingConflicts otherwise."""
    try:
        return write(False)
    except PhrasingConflicts as exc:
        if not confirm:
            raise
        result = write(True)
        console.record(staff, CONFIRM_ACTION, target, via=via, note=confirmation_note(exc.conflicts)[:1000])
        return result
