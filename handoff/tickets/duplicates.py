"""Possible duplicates of a ticket (the hint on its console page): another ticket of the same channel
user, or one whose question the knowledge matcher scores at `threshold` or more against this one
(`Matcher.similarity`: the same normalisation, synonyms and pinyin the bot answers with). Merged
tickets are never candidates; of the latest `SCAN` tickets of the readable departments, the `SCORED`
that share the most characters with this one are scored (the matcher's score costs ~10 ms a pair)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket
from handoff.tickets.records import MERGED, TicketView, _view

SCAN = 300  # recent tickets looked at
SCORED = 10  # of those, the closest by shared characters are scored by the matcher (~10 ms each)
MAX_HINTS = 5


@dataclass(frozen=True)
class Duplicate:
    ticket: TicketView
    same_user: bool
    score: float  # the matcher's similarity of the two questions

    @property
    def reason(self) -> str:
        parts = ["同一留言人"] if self.same_user else []
        if self.score > 0:
            parts.append(f"内容相似度 {self.score:.2f}")
        return "，".join(parts)


def find_duplicates(
    sessions: sessionmaker[Session],
    t: TicketView,
    *,
    similarity: Callable[[str, str], float],
    threshold: float,
    departments: Sequence[str] | None,
) -> list[Duplicate]:
    """Candidates for merging with `t`, best first (same user first, then by similarity)."""
    if t.status == MERGED:
        return []
    stmt = select(Ticket).where(Ticket.id != t.id, Ticket.status != MERGED)
    if departments is not None:
        stmt = stmt.where(Ticket.department.in_(list(departments)))
    same = or_(Ticket.channel != t.channel, Ticket.user_ref != t.user_ref)
    with sessions() as s:
        mine = (
            s.execute(stmt.where(~same).order_by(Ticket.created_at.desc()).limit(MAX_HINTS)).scalars().all()
        )
        recent = s.execute(stmt.where(same).order_by(Ticket.created_at.desc()).limit(SCAN)).scalars().all()
        today = t.created_at.date()
        found: dict[int, Duplicate] = {}
        for row in mine:
            found[row.id] = Duplicate(_view(row, today), True, _score(similarity, t.question, row.question))
        mine_chars = _chars(t.question)
        overlap = [(_overlap(mine_chars, _chars(row.question)), row) for row in recent]
        closest = sorted((o for o in overlap if o[0] >= 0.4), key=lambda o: -o[0])[:SCORED]
        for _, row in closest:
            score = _score(similarity, t.question, row.question)
            if score >= threshold:
                found[row.id] = Duplicate(_view(row, today), False, score)
    ranked = sorted(found.values(), key=lambda d: (not d.same_user, -d.score, d.ticket.no))
    return ranked[:MAX_HINTS]


def _chars(text: str) -> set[str]:
    return {ch for ch in text.lower() if ch.isalnum()}


def _overlap(a: set[str], b: set[str]) -> float:
    """Shared characters over the shorter text's: a cheap pre-filter before the matcher's score."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _score(similarity: Callable[[str, str], float], a: str, b: str) -> float:
    try:
        return float(similarity(a, b))
    except Exception:  # the hint must never break the ticket page (index being rebuilt)
        return 0.0
