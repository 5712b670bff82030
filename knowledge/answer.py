"""KnowledgeBase: the one answering decision shared by `policybot ask` and the conversation.

It joins the FAQ store, the matcher and the policy passages: an FAQ answer when one FAQ is clearly
best, else clarify with the top 3, else the best cited policy passages, else none. FAQs that are not
current (source policy 失效/废止, outside valid-from/valid-to) are never given as an answer; they are
reported in `flags`. The in-memory index follows the store: `refresh()` compares the store's version
stamp (at most every `refresh_seconds`) and applies only the changed entries.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.faqs import FaqRecord, FaqStore
from knowledge.faqs.conflicts import ConflictGuard
from knowledge.matcher import Hit, Matcher, Thresholds
from knowledge.models import china_today
from knowledge.policies import PassageHit, PolicyStore
from knowledge.text import TextProcessor

log = logging.getLogger(__name__)

DecisionKind = Literal["answer", "clarify", "passage", "none"]


@dataclass(frozen=True)
class Source:
    title: str
    doc_no: str | None
    article: str | None
    status: str | None
    url: str | None = None
    policy_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "title": self.title,
            "doc_no": self.doc_no,
            "article": self.article,
            "status": self.status,
            "url": self.url,
            "policy_id": self.policy_id,
        }

    def citation(self) -> str:
        parts = [f"《{self.title}》"]
        if self.doc_no:
            parts.append(f"（{self.doc_no}）")
        if self.article:
            parts.append(self.article)
        return "".join(parts)


@dataclass(frozen=True)
class HitView:
    faq_id: str
    score: float
    matched_text: str
    question: str

    def as_dict(self) -> dict[str, object]:
        return {
            "faq_id": self.faq_id,
            "score": round(self.score, 4),
            "matched_text": self.matched_text,
            "question": self.question,
        }


@dataclass(frozen=True)
class AskResult:
    decision: DecisionKind
    query: str
    answer: str | None = None
    faq_id: str | None = None
    score: float = 0.0
    hits: tuple[HitView, ...] = ()
    sources: tuple[Source, ...] = ()
    passages: tuple[PassageHit, ...] = ()
    unit: str | None = None  # drafting unit (制文单位) of the nearest FAQ or policy
    flags: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "query": self.query,
            "answer": self.answer,
            "faq_id": self.faq_id,
            "score": round(self.score, 4),
            "hits": [h.as_dict() for h in self.hits],
            "sources": [s.as_dict() for s in self.sources],
            "passages": [
                {
                    "policy_id": p.policy_id,
                    "label": p.label,
                    "text": p.text,
                    "score": round(p.score, 4),
                    "citation": p.citation(),
                }
                for p in self.passages
            ],
            "unit": self.unit,
            "flags": list(self.flags),
        }


class KnowledgeBase:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        thresholds: Thresholds | None = None,
        passage_threshold: float = 0.3,
        refresh_seconds: float = 2.0,
        text: TextProcessor | None = None,
    ) -> None:
        self.sessions = sessions
        self.thresholds = thresholds or Thresholds()
        self.passage_threshold = passage_threshold
        self.refresh_seconds = refresh_seconds
        self.text = text or TextProcessor()
        # Every change made through this store is checked against the published phrasings first.
        self.faqs = FaqStore(sessions, guard=ConflictGuard(lambda: self.thresholds))
        self.policies = PolicyStore(sessions, refresh_seconds=refresh_seconds)
        self.matcher = Matcher(self.text)
        self._records: dict[str, FaqRecord] = {}
        self._synonyms: list[list[str]] | None = None
        self._seen = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    # --- index maintenance ----------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> bool:
        """Follow the store: True when the index changed. Cheap when nothing changed."""
        now = time.monotonic()
        if not force and self._seen >= 0 and now - self._checked < self.refresh_seconds:
            return False
        with self._lock:
            self._checked = now
            try:
                version = self.faqs.version()
            except SQLAlchemyError as exc:  # database unreachable: keep answering from the index
                if force or self._seen < 0:
                    raise
                log.warning("faq index refresh skipped: %s", type(exc).__name__)
                return False
            if version == self._seen and not force:
                return False
            synonyms = self.faqs.synonyms()
            if force or self._seen < 0 or synonyms != self._synonyms:
                self._rebuild(synonyms)
            else:
                self._apply(self.faqs.changes_since(self._seen, limit=100_000))
            self._seen = version
            return True

    def _rebuild(self, synonyms: list[list[str]]) -> None:
        self.text.set_synonyms(synonyms)
        records = [r for r in self.faqs.list(status="published", limit=10_000_000)]
        self.text.add_words(_terms(records))
        self._records = {r.id: r for r in records}
        self.matcher = Matcher(self.text)
        self.matcher.build(_entry(r) for r in records)
        self._synonyms = synonyms

    def _apply(self, changed: list[FaqRecord]) -> None:
        self.text.add_words(_terms(changed))
        for r in changed:
            if r.status == "published":
                self._records[r.id] = r
                self.matcher.upsert(_entry(r))
            else:
                self._records.pop(r.id, None)
                self.matcher.remove(r.id)

    # --- the decision ---------------------------------------------------------------------------
    def ask(self, query: str, *, k: int = 5, today: dt.date | None = None) -> AskResult:
        self.refresh()
        today = today or china_today()  # validity dates are Beijing calendar days
        raw_hits = self.matcher.search(query, k=k + 3)
        flags: list[str] = []
        hits: list[Hit] = []
        for h in raw_hits:
            rec = self._records.get(h.faq_id)
            if rec is None:
                continue
            ok, reason = self.policies.faq_validity(rec.source_policy, rec.valid_from, rec.valid_to, today)
            if not ok:
                flags.append(f"{rec.id}: {reason}")
                continue
            hits.append(h)
        hits = hits[:k]
        views = tuple(
            HitView(h.faq_id, h.score, h.matched_text, self._records[h.faq_id].question) for h in hits
        )
        top = hits[0].score if hits else 0.0
        # the drafting unit of the nearest FAQ, when it is near enough to say something about the topic
        nearest_unit = self._records[hits[0].faq_id].unit if hits and top >= self.passage_threshold else None
        decision = self.matcher.decide(hits, self.thresholds)
        if decision.kind == "answer":
            rec = self._records[decision.hits[0].faq_id]
            return AskResult(
                "answer",
                query,
                answer=rec.answer,
                faq_id=rec.id,
                score=top,
                hits=views,
                sources=self._faq_sources(rec),
                unit=rec.unit,
                flags=tuple(flags),
            )
        if decision.kind == "clarify":
            chosen = {h.faq_id for h in decision.hits}
            return AskResult(
                "clarify",
                query,
                score=top,
                hits=tuple(v for v in views if v.faq_id in chosen),
                unit=nearest_unit,
                flags=tuple(flags),
            )
        passages = tuple(p for p in self.policies.search(query, k=3) if p.score >= self.passage_threshold)
        if passages:
            sources = tuple(
                Source(p.title, p.doc_no, p.label, p.status, p.url, p.policy_id) for p in passages
            )
            return AskResult(
                "passage",
                query,
                score=top,
                hits=views,
                sources=sources,
                passages=passages,
                unit=passages[0].issuer or nearest_unit,
                flags=tuple(flags),
            )
        return AskResult("none", query, score=top, hits=views, unit=nearest_unit, flags=tuple(flags))

    def answer_for(self, faq_id: str) -> AskResult | None:
        """The answer of one FAQ (when the citizen picks a suggestion)."""
        self.refresh()
        rec = self._records.get(faq_id)
        if rec is None:
            return None
        return AskResult(
            "answer",
            rec.question,
            answer=rec.answer,
            faq_id=rec.id,
            score=1.0,
            sources=self._faq_sources(rec),
            unit=rec.unit,
        )

    def record(self, faq_id: str) -> FaqRecord | None:
        self.refresh()
        return self._records.get(faq_id)

    def _faq_sources(self, rec: FaqRecord) -> tuple[Source, ...]:
        if not rec.source_policy:
            return ()
        pol = self.policies.cached(rec.source_policy)
        if pol is None:
            return (Source(rec.source_policy, None, rec.source_article, None),)
        return (Source(pol.title, pol.doc_no, rec.source_article, pol.status, pol.url, pol.id),)


def _entry(r: FaqRecord):  # type: ignore[no-untyped-def]
    from knowledge.matcher import IndexEntry

    return IndexEntry(r.id, r.question, tuple(r.similar), tuple(r.tags))


def _terms(records: list[FaqRecord]) -> list[str]:
    """Domain words for jieba: tags and short policy terms kept by the store."""
    out: list[str] = []
    for r in records:
        out.extend(t for t in r.tags if 2 <= len(t) <= 12)
    return out
