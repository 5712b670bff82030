"""Learning from use, with review: candidate similar phrasings for FAQs, taken from what citizens and
staff did, queued for the FAQ's drafting unit to approve or reject.

Sources: (a) "clarify", a citizen who got a clarify list and chose an FAQ (the original question ->
the chosen FAQ); (b) "rated", an answer rated 有用 that was given without a clear lead (a near
phrasing would have been ambiguous or below the answer threshold); both are mined from the query log
(`mine`), whose texts are masked already; (c) "ticket", staff answering a ticket with an existing FAQ
(the caller, which owns the ticket, hands in the question with personal data removed: `offer`).
A candidate that carried personal data (masked in the log) is dropped; the others are deduplicated
per FAQ by their normalised text,
counted per source and never counted twice from the same log entry or ticket (`suggestion_ref`).
Approving adds the phrasing to the FAQ as a new version by the approver, through the FAQ store and
so through its conflict check (knowledge.faqs.conflicts); a candidate that conflicts stays queued
with its conflicts shown.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.answer import KnowledgeBase
from knowledge.errors import InvalidInput, NotFound
from knowledge.faqs.conflicts import PhrasingConflict, PhrasingConflicts
from knowledge.faqs.fields import question_key
from knowledge.models import Faq, KbState, PhrasingSuggestion, QueryLog, SuggestionRef, utcnow

SOURCES = ("clarify", "rated", "ticket")
SOURCE_LABELS = {"clarify": "澄清后选择", "rated": "评价有用", "ticket": "留言以问答答复"}
STATUSES = ("pending", "approved", "rejected")
CLEAR_SCORE = 0.9  # an answer this close to a stored phrasing teaches nothing new
CLEAR_MARGIN = 0.2  # nor does one that led the second FAQ by this much
RATING_WINDOW = dt.timedelta(days=1)  # log entries newer than this are mined again (late ratings)
MIN_CHARS, MAX_CHARS = 2, 200
_CURSOR = "suggestions_log_cursor"
_STARS = re.compile(r"[0-9A-Za-z@._\-]*\*{2,}[0-9A-Za-z@._\-]*")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Suggestion:
    id: int
    faq_id: str
    text: str
    count: int
    sources: dict[str, int]
    status: str
    first_at: dt.datetime
    last_at: dt.datetime
    decided_by: str | None
    faq_question: str = ""
    unit: str | None = None
    conflicts: tuple[PhrasingConflict, ...] = field(default=(), compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "faq_id": self.faq_id,
            "faq_question": self.faq_question,
            "unit": self.unit,
            "text": self.text,
            "count": self.count,
            "sources": dict(self.sources),
            "status": self.status,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "decided_by": self.decided_by,
            "conflicts": [c.as_dict() for c in self.conflicts],
        }


@dataclass
class Decision:
    """The result of approving candidates: the ones added, and the ones kept back with the reason."""

    approved: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def clean_candidate(text: str) -> str:
    """A candidate as it may become a phrasing, spaces collapsed; "" for a text that carried
    personal data (masked in the log: 138****5678), which never becomes shared knowledge."""
    if _STARS.search(text or ""):
        return ""
    return _SPACES.sub(" ", text or "").strip(" ，,。；;：:、")[:MAX_CHARS]


class SuggestionStore:
    """The review queue of learned phrasings over the knowledge base's store (and its guard)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._sessions = kb.sessions

    # --- collecting -------------------------------------------------------------------------------
    def offer(
        self, faq_id: str, text: str, *, source: str, ref: str, at: dt.datetime | None = None
    ) -> int | None:
        """Count one candidate; the suggestion's id, or None when it is not worth a review (too short,
        already a phrasing of the FAQ, the FAQ gone) or `ref` was counted before."""
        if source not in SOURCES:
            raise ValueError(f"unknown suggestion source {source!r}")
        candidate = clean_candidate(text)
        key = question_key(candidate)[:255]
        if len(key) < MIN_CHARS:
            return None
        rec = self.kb.faqs.get(faq_id)
        if rec is None or rec.status != "published":
            return None
        if key in {question_key(p) for p in (rec.question, *rec.similar)}:
            return None
        when = at or utcnow()
        for _attempt in range(3):
            try:
                with self._sessions() as s, s.begin():
                    if s.get(SuggestionRef, ref[:120]) is not None:
                        return None
                    row = s.scalars(
                        select(PhrasingSuggestion)
                        .where(PhrasingSuggestion.faq_id == rec.id, PhrasingSuggestion.key == key)
                        .with_for_update()
                    ).first()
                    if row is None:
                        row = PhrasingSuggestion(
                            faq_id=rec.id, text=candidate, key=key, count=0, sources={}, status="pending",
                            first_at=when, last_at=when,
                        )  # fmt: skip
                        s.add(row)
                        s.flush()
                    row.count += 1
                    row.sources = {**(row.sources or {}), source: (row.sources or {}).get(source, 0) + 1}
                    row.last_at = max(row.last_at, when)
                    s.add(SuggestionRef(ref=ref[:120], suggestion_id=row.id))
                    return row.id
            except IntegrityError:
                continue  # a concurrent writer created the row or counted the ref: look again
        return None

    def mine(self, *, now: dt.datetime | None = None) -> int:
        """Collect candidates (a) and (b) from query-log entries not mined yet; the number counted."""
        now = now or utcnow()
        with self._sessions() as s:
            cursor = int(s.scalar(select(KbState.value).where(KbState.key == _CURSOR)) or 0)
            rows = list(
                s.scalars(
                    select(QueryLog)
                    .where(QueryLog.id > cursor, QueryLog.outcome == "answer", QueryLog.faq_id.is_not(None))
                    .order_by(QueryLog.id)
                    .limit(50_000)
                )
            )
            previous = _previous_rows(s, [r for r in rows if r.score is None or r.score >= 0.99])
            settled = s.scalar(select(func.max(QueryLog.id)).where(QueryLog.at < now - RATING_WINDOW))
        self.kb.refresh()
        counted = 0
        for r in rows:
            prev = previous.get(r.id)
            if prev is not None and prev.outcome == "clarify" and _picked(r, prev):
                if self._near(prev.text, str(r.faq_id)) and self.offer(
                    str(r.faq_id), prev.text, source="clarify", ref=f"log:{r.id}", at=r.at
                ):
                    counted += 1
            elif r.rating == "useful" and r.score is not None and self._narrow(r.text, str(r.faq_id)):
                if self.offer(str(r.faq_id), r.text, source="rated", ref=f"rated:{r.id}", at=r.at):
                    counted += 1
        if settled:
            self._advance(min(int(settled), rows[-1].id if rows else int(settled)))
        return counted

    def _near(self, text: str, faq_id: str) -> bool:
        """The chosen FAQ is among the question's best hits (a choice, not a fresh question)."""
        return any(h.faq_id == faq_id for h in self.kb.matcher.search(text, k=5))

    def _narrow(self, text: str, faq_id: str) -> bool:
        """The FAQ is still the best hit but without a clear lead or a near-identical phrasing."""
        hits = self.kb.matcher.search(text, k=2)
        if not hits or hits[0].faq_id != faq_id:
            return False
        lead = hits[0].score - (hits[1].score if len(hits) > 1 else 0.0)
        return hits[0].score < CLEAR_SCORE and lead < CLEAR_MARGIN

    def _advance(self, cursor: int) -> None:
        with self._sessions() as s, s.begin():
            changed = s.execute(
                update(KbState).where(KbState.key == _CURSOR, KbState.value < cursor).values(value=cursor)
            ).rowcount  # type: ignore[attr-defined]
            if not changed and s.get(KbState, _CURSOR) is None:
                s.add(KbState(key=_CURSOR, value=cursor))

    # --- review -------------------------------------------------------------------------------------
    def list(
        self,
        *,
        status: str | None = "pending",
        units: Iterable[str | None] | None = None,
        ids: Iterable[int] | None = None,
        with_conflicts: bool = False,
        limit: int = 500,
    ) -> builtins.list[Suggestion]:
        """Candidates, most counted first; `units` limits them to FAQs of those drafting units."""
        if status is not None and status not in STATUSES:
            raise InvalidInput("状态应为 pending、approved 或 rejected", f"bad status {status!r}")
        query = select(PhrasingSuggestion).order_by(
            PhrasingSuggestion.count.desc(), PhrasingSuggestion.last_at.desc(), PhrasingSuggestion.id
        )
        if status is not None:
            query = query.where(PhrasingSuggestion.status == status)
        if ids is not None:
            query = query.where(PhrasingSuggestion.id.in_([int(i) for i in ids]))
        allowed = None if units is None else set(units)
        out: builtins.list[Suggestion] = []
        with self._sessions() as s:
            rows = list(s.scalars(query.limit(max(1, int(limit)) * (4 if allowed is not None else 1))))
        for r in rows:
            rec = self.kb.faqs.get(r.faq_id)
            unit = rec.unit if rec else None
            if allowed is not None and unit not in allowed:
                continue
            conflicts: tuple[PhrasingConflict, ...] = ()
            if with_conflicts and rec is not None and r.status == "pending":
                conflicts = tuple(self.kb.faqs.check_change(rec.id, similar=[*rec.similar, r.text]))
            out.append(_view(r, rec.question if rec else "", unit, conflicts))
            if len(out) >= limit:
                break
        return out

    def approve(self, ids: Sequence[int], *, by: str, confirm_conflicts: bool = False) -> Decision:
        """Add each candidate to its FAQ as a similar phrasing (a new version by `by`). A candidate
        whose FAQ would take phrasings from other FAQs stays pending (reason in `refused`)."""
        result = Decision()
        for sid in ids:
            row = self._require(int(sid))
            if row.status != "pending":
                result.refused[row.id] = "该建议已处理"
                continue
            rec = self.kb.faqs.get(row.faq_id)
            if rec is None or rec.status != "published":
                result.refused[row.id] = f"问答 {row.faq_id} 已不存在或未发布"
                continue
            try:
                self.kb.faqs.edit(
                    rec.id,
                    by=by,
                    similar=[*rec.similar, row.text],
                    note=f"采纳建议问法 #{row.id}",
                    confirm_conflicts=confirm_conflicts,
                )
            except PhrasingConflicts as exc:
                result.refused[row.id] = "；".join(c.describe() for c in exc.conflicts[:5])
                continue
            self._decide(row.id, "approved", by)
            result.approved.append(row.id)
        if result.approved:
            self.kb.refresh(force=True)
        return result

    def reject(self, ids: Sequence[int], *, by: str) -> builtins.list[int]:
        done: builtins.list[int] = []
        for sid in ids:
            row = self._require(int(sid))
            if row.status == "pending":
                self._decide(row.id, "rejected", by)
                done.append(row.id)
        return done

    def _require(self, sid: int) -> PhrasingSuggestion:
        with self._sessions() as s:
            row = s.get(PhrasingSuggestion, sid)
            if row is None:
                raise NotFound(f"未找到建议问法 {sid}", f"suggestion {sid} not found")
            s.expunge(row)
            return row

    def _decide(self, sid: int, status: str, by: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(
                update(PhrasingSuggestion)
                .where(PhrasingSuggestion.id == sid, PhrasingSuggestion.status == "pending")
                .values(status=status, decided_by=by[:100], decided_at=utcnow())
            )

    def counts(self, *, units: Iterable[str] | None = None) -> dict[str, int]:
        """Candidates per status, optionally of the FAQs of these drafting units only."""
        query = select(PhrasingSuggestion.status, func.count()).group_by(PhrasingSuggestion.status)
        if units is not None:
            query = query.join(Faq, Faq.id == PhrasingSuggestion.faq_id).where(Faq.unit.in_(list(units)))
        with self._sessions() as s:
            rows = s.execute(query).all()
        return {str(st): int(n) for st, n in rows}


def _previous_rows(s: Session, rows: Sequence[QueryLog]) -> dict[int, QueryLog]:
    """For each entry, the entry just before it in the same conversation (one query per 500
    conversations)."""
    out: dict[int, QueryLog] = {}
    wanted = [r for r in rows if r.session_id]
    sids = sorted({str(r.session_id) for r in wanted})
    earlier: dict[str, list[QueryLog]] = {}
    for i in range(0, len(sids), 500):
        for row in s.scalars(
            select(QueryLog)
            .where(QueryLog.session_id.in_(sids[i : i + 500]))
            .order_by(QueryLog.session_id, QueryLog.id)
        ):
            earlier.setdefault(str(row.session_id), []).append(row)
    for r in wanted:
        before = [x for x in earlier.get(str(r.session_id), []) if x.id < r.id]
        if before:
            out[r.id] = before[-1]
    return out


def _picked(r: QueryLog, prev: QueryLog) -> bool:
    """`r` is the choice out of the clarify list `prev`: a number (logged without a score, with the
    original question) or a tapped suggestion (the FAQ's own question, a full match)."""
    return r.score is None or (r.score >= 0.99 and r.text != prev.text)


def _view(
    r: PhrasingSuggestion, question: str, unit: str | None, conflicts: tuple[PhrasingConflict, ...]
) -> Suggestion:
    return Suggestion(
        r.id, r.faq_id, r.text, int(r.count), dict(r.sources or {}), r.status, r.first_at, r.last_at,
        r.decided_by, question, unit, conflicts,
    )  # fmt: skip
