"""Promotion of an answered ticket to an FAQ draft (`TicketService.promote_to_faq`, a mixin of the
service). The draft carries only what belongs in shared knowledge: the ticket's own question (with
personal data left out, not starred) as the standard question and nothing else as a phrasing (the
other messages of the conversation are about other things: taking them along is what corrupted the
knowledge base once), and the reply as the answer without the sentences that name the staff member
or give a personal phone number (staff type them into the draft if they belong there). Drafts are
never published here; publishing goes through the FAQ store and its conflict check.
Answering a ticket with an existing FAQ (`faq_reply_text`) teaches that FAQ the ticket's wording
(`offer_ticket_phrasing`, a candidate for review in knowledge.suggestions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from handoff.models import StaffUser
from handoff.privacy import find_pii, remove_pii
from knowledge.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from handoff.tickets.records import TicketView
    from knowledge.answer import KnowledgeBase
    from knowledge.faqs import FaqRecord, FaqStore
    from knowledge.suggestions import SuggestionStore

PROMOTED_TAG = "政策留言转化"
MAX_QUESTION = 500
_CLAUSE = re.compile(r"[^。！？；!?;\n]*[。！？；!?;]?\n?")
_PERSONAL_PHONES = frozenset({"mobile", "landline"})


def promoted_tag(no: str) -> str:
    """The tag that ties a draft to its ticket (one draft per ticket)."""
    return f"留言{no}"


def draft_question(t: TicketView) -> str:
    """The standard question of the draft: the published wording if staff set one, else the
    citizen's question, with personal data removed."""
    return remove_pii(t.publish_question or t.question)[:MAX_QUESTION].strip()


def draft_answer(reply: str, staff_names: Iterable[str]) -> str:
    """The reply without the clauses that name a staff member or give a phone number that is
    personal (mobiles, direct lines; public hotlines such as 12345 are kept)."""
    names = [n for n in {n.strip() for n in staff_names} if len(n) >= 2]
    kept: list[str] = []
    for clause in _CLAUSE.findall(reply):
        if not clause.strip():
            if clause:
                kept.append(clause)
            continue
        if any(n in clause for n in names):
            continue
        if any(m.kind in _PERSONAL_PHONES for m in find_pii(clause)):
            continue
        kept.append(clause)
    text = "".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


class PromotionMethods:
    """The promotion part of TicketService (a mixin over its sessionmaker)."""

    _sessions: sessionmaker[Session]

    get: Callable[[str], TicketView]  # TicketQueries'
    add_note: Callable[..., Any]  # TicketService's

    def promoted_draft(self, no: str, faqs: FaqStore) -> FaqRecord | None:
        found = faqs.list(tag=promoted_tag(no), limit=1)
        return found[0] if found else None

    def promote_to_faq(self, no: str, *, by: str, faqs: FaqStore) -> FaqRecord:
        """The FAQ draft of an answered ticket (created once; later calls return the same draft)."""
        t = self.get(no)
        existing = self.promoted_draft(t.no, faqs)
        if existing is not None:
            return existing
        if not t.reply:
            raise InvalidInput("留言尚未答复，不能转为问答", f"ticket {t.no} has no reply")
        question = draft_question(t)
        if not question:
            raise InvalidInput("留言问题去除个人信息后为空，不能转为问答", f"ticket {t.no}: empty question")
        answer = draft_answer(t.publish_reply or t.reply, self._staff_names(t))
        rec = faqs.add(
            by=by,
            status="draft",
            question=question,
            answer=answer,
            similar=(),
            tags=[PROMOTED_TAG, promoted_tag(t.no)],
            unit=t.department,
            allow_empty_answer=True,
        )
        self.add_note(t.no, by=by, text=f"已转为常见问答草稿 {rec.id}")
        return rec

    def _staff_names(self, t: TicketView) -> set[str]:
        """The names staff are known by: every account's username and display name."""
        with self._sessions() as s:
            rows = s.execute(select(StaffUser.username, StaffUser.display_name)).all()
        names = {n for row in rows for n in row if n}
        names |= {n for n in (t.replied_by, t.assigned_to) if n}
        return names


def faq_reply_text(kb: KnowledgeBase, faq_id: str) -> str:
    """A ticket reply made of a published FAQ: its answer and its source (文号、条款)."""
    result = kb.answer_for(faq_id)
    if result is None or not result.answer:
        raise NotFound(f"未找到已发布的问答 {faq_id}", f"no published FAQ {faq_id!r} with an answer")
    text = result.answer
    if result.sources:
        text += "\n来源：" + "；".join(s.citation() for s in result.sources)
    return text


def offer_ticket_phrasing(suggestions: SuggestionStore, t: TicketView, faq_id: str) -> int | None:
    """Staff answered this ticket with an FAQ: its question (personal data removed) becomes a
    candidate phrasing of that FAQ (source "ticket"), counted once per ticket and FAQ."""
    return suggestions.offer(faq_id, remove_pii(t.question), source="ticket", ref=f"ticket:{t.no}:{faq_id}")


def used_faq_answer(reply: str, answer: str) -> bool:
    """Whether a reply carries an FAQ's answer (staff inserted it and may have added a greeting)."""
    head = re.sub(r"\s+", "", answer)[:40]
    return bool(head) and head in re.sub(r"\s+", "", reply)
