"""Time limits per ticket category (咨询 / 投诉 / 建议 / 举报) in working days.

The setting (`POLICYBOT_SLA_DAYS`) gives the defaults; an administrator's edits on the console's
办理时限 page are stored as one JSON row of the shared key/value table `app_value` (key "sla_days") and
override the setting category by category. A category with neither falls back to the department's
limit and then to the global one (`POLICYBOT_TICKET_LIMIT_DAYS`), as before categories had limits.
The row is read when a ticket is opened or its category changes (rare, never on the chat hot path),
so every worker applies an edit at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import DateTime, String, Text, column, insert, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from handoff.tickets.records import CATEGORIES, MAX_LIMIT
from knowledge.errors import InvalidInput

log = logging.getLogger(__name__)

KEY = "sla_days"
MAX_CATEGORY_LIMIT = 365  # working days; more is a typo
# The shared key/value table (created with the bot's tables; named here, not imported).
_APP_VALUE = table("app_value", column("key", String), column("value", Text), column("expires_at", DateTime))


def check_days(value: object, *, what: str) -> int:
    """A time limit in working days (1..365), or InvalidInput with the Chinese message."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CATEGORY_LIMIT:
        raise InvalidInput(
            f"{what}的办理时限应为 1 到 {MAX_CATEGORY_LIMIT} 之间的整数（工作日）",
            f"time limit of {what!r} out of range: {value!r}",
        )
    return value


@dataclass(frozen=True)
class CategoryLimit:
    """One category's limit as the admin page shows it: in effect, from the setting, edited."""

    category: str
    days: int | None  # None: no limit of its own (department / global limit)
    setting: int | None
    edited: bool


class CategoryLimits:
    """The per-category limits in effect: the admin's stored edits over the setting."""

    def __init__(self, sessions: sessionmaker[Session], defaults: Mapping[str, int] | None = None) -> None:
        defaults = dict(defaults or {})
        for category, days in defaults.items():
            if category not in CATEGORIES:
                raise ValueError(f"time limit for unknown ticket category {category!r}; known: {CATEGORIES}")
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_LIMIT:
                raise ValueError(f"time limit for {category!r} must be 1..{MAX_LIMIT} working days")
        self.sessions = sessions
        self.defaults = defaults

    def stored(self) -> dict[str, int]:
        with self.sessions() as s:
            return _parse(s.scalar(select(_APP_VALUE.c.value).where(_APP_VALUE.c.key == KEY)))

    def effective(self) -> dict[str, int]:
        """Category -> working days, for the categories that have a limit of their own."""
        return {**self.defaults, **self.stored()}

    def get(self, category: str) -> int | None:
        return self.effective().get(category)

    def rows(self) -> list[CategoryLimit]:
        stored = self.stored()
        return [
            CategoryLimit(c, stored.get(c, self.defaults.get(c)), self.defaults.get(c), c in stored)
            for c in CATEGORIES
        ]

    def save(self, values: Mapping[str, int | None]) -> dict[str, list[int | None]]:
        """Store the admin's limits (None: back to the setting); returns what changed, old -> new."""
        for category, days in values.items():
            if category not in CATEGORIES:
                raise InvalidInput(f"未知的留言类型：{category}", f"unknown category {category!r}")
            if days is not None:
                check_days(days, what=category)
        for attempt in (1, 2):
            try:
                with self.sessions.begin() as s:
                    raw = s.scalar(select(_APP_VALUE.c.value).where(_APP_VALUE.c.key == KEY))
                    before = {**self.defaults, **_parse(raw)}
                    stored = _parse(raw)
                    for category, days in values.items():
                        if days is None or days == self.defaults.get(category):
                            stored.pop(category, None)
                        else:
                            stored[category] = days
                    value = json.dumps({"days": stored}, ensure_ascii=False)
                    if raw is None:
                        s.execute(insert(_APP_VALUE).values(key=KEY, value=value, expires_at=None))
                    else:
                        s.execute(update(_APP_VALUE).where(_APP_VALUE.c.key == KEY).values(value=value))
                after = {**self.defaults, **stored}
                return {c: [before.get(c), after.get(c)] for c in CATEGORIES if before.get(c) != after.get(c)}
            except IntegrityError:  # two first edits at once: the other created the row
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _parse(raw: str | None) -> dict[str, int]:
    if not raw:
        return {}
    try:
        days = json.loads(raw).get("days", {})
        return {str(c): int(d) for c, d in dict(days).items() if c in CATEGORIES and int(d) >= 1}
    except (ValueError, TypeError, AttributeError):
        log.error("stored category time limits unreadable; using the setting")
        return {}


def parse_form_days(raw: str, category: str) -> int | None:
    """A number typed on the admin page; empty means "no limit of its own"."""
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isdecimal():
        raise InvalidInput(
            f"{category}的办理时限应为整数（工作日），不能是“{text[:10]}”", f"bad days {text!r}"
        )
    return check_days(int(text), what=category)


__all__ = ["MAX_CATEGORY_LIMIT", "CategoryLimit", "CategoryLimits", "check_days", "parse_form_days"]
