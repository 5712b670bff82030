"""KnowledgeBase: the one answering decision shared by `policybot ask` and the conversation.

It joins the FAQ store, the matcher and the policy passages: an FAQ answer when one FAQ is clearly
best, else clarify with the top 3, else the best cited policy passages, else none. FAQs that are not
current (source policy 失效/废止, outside valid-from/valid-to) are never given as an answer; they are
reported in `flags`. The in-memory index follows the store: `refresh()` compares the store's version
stamp (at most every `refresh_seconds`) and applies only the changed entries. Unless fixed thresholds
are given, the decision thresholds are the store's own (`knowledge.calibration`): computed when the
index is first built and again `calibrate_debounce_seconds` after the store last changed, in a
background thread; values pinned by the operator win.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.calibration import CalibrationReport, ThresholdPins, choose, collect
from knowledge.faqs import FaqRecord, FaqStore
from knowledge.faqs.conflicts import ConflictGuard
from knowledge.links import LinkHealth
from knowledge.matcher import Hit, Matcher, Thresholds
from knowledge.models import china_today
from knowledge.policies import PassageHit, PolicyRecord, PolicyStore
from knowledge.policies.library import SUPERSEDED_STATUSES
from knowledge.policies.records import article_link
from knowledge.text import TextProcessor

log = logging.getLogger(__name__)

DecisionKind = Literal["answer", "clarify", "passage", "none"]
SYNC_CALIBRATION_PHRASINGS = 5_000  # up to this size the first calibration runs before the first answer


@dataclass(frozen=True)
class Source:
    title: str
    doc_no: str | None
    article: str | None
    status: str | None
    url: str | None = None
    policy_id: str | None = None
    article_url: str | None = None  # the article on the policy library page (/policies/<id>#a-…)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "title": self.title,
            "doc_no": self.doc_no,
            "article": self.article,
            "status": self.status,
            "url": self.url,
            "policy_id": self.policy_id,
            "article_url": self.article_url,
        }

    def citation(self) -> str:
        parts = [f"《{self.title}》"]
        if self.doc_no:
            parts.append(f"（{self.doc_no}）")
        if self.article:
            parts.append(self.article)
        return "".join(parts)


@dataclass(frozen=True)
class Superseded:
    """The FAQ that matched rests on a policy that was repealed, expired or revised: the answer gives
    the replacement's passage instead, and says so (the dialogue renders `status` and both names)."""

    faq_id: str
    status: str  # 废止 / 失效 / 已修订
    old: Source
    new: Source

    def as_dict(self) -> dict[str, object]:
        return {
            "faq_id": self.faq_id,
            "status": self.status,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
        }


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
    superseded: Superseded | None = None
    service_url: str | None = None  # 办事链接 of the answer (FAQ, else the cited policy)
    link_broken: bool = False  # the service link failed two checks in a row: do not show it

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
            "superseded": self.superseded.as_dict() if self.superseded else None,
            "service_url": None if self.link_broken else self.service_url,
            "link_broken": self.link_broken,
        }


class KnowledgeBase:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        thresholds: Thresholds | None = None,
        pins: ThresholdPins | None = None,
        passage_threshold: float = 0.3,
        refresh_seconds: float = 2.0,
        calibrate_debounce_seconds: float = 30.0,
        text: TextProcessor | None = None,
        public_base_url: str | None = None,
    ) -> None:
        """`thresholds` fixes the decision thresholds; without it they are automatic (`pins` win)."""
        self.sessions = sessions
        self.public_base_url = (public_base_url or "").rstrip("/") or None
        self.links = LinkHealth(sessions, refresh_seconds=max(refresh_seconds, 5.0))
        self._fixed = thresholds
        self.pins = pins or ThresholdPins()
        self.calibrate_debounce_seconds = calibrate_debounce_seconds
        self.calibration: CalibrationReport | None = None  # the latest automatic calibration
        self._timer: threading.Timer | None = None
        self._cal_lock = threading.Lock()
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
            first = self._seen < 0
            if force or first or synonyms != self._synonyms:
                self._rebuild(synonyms)
            else:
                self._apply(self.faqs.changes_since(self._seen, limit=100_000))
            self._seen = version
        if self._fixed is None and not self.pins.complete:
            if first and self.matcher.phrasing_count <= SYNC_CALIBRATION_PHRASINGS:
                self.recalibrate()
            else:
                self._schedule_calibration(0.0 if first else self.calibrate_debounce_seconds)
        return True

    # --- thresholds -----------------------------------------------------------------------------
    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in force: fixed ones, else pinned values over the store's own (the
        built-in defaults until the first calibration has run or when the store is too small)."""
        if self._fixed is not None:
            return self._fixed
        auto = self.calibration.thresholds if self.calibration is not None else Thresholds()
        return self.pins.apply(auto)

    def recalibrate(self) -> CalibrationReport:
        """Compute the store's thresholds now, from the live index (searches go on meanwhile)."""
        with self._cal_lock:
            report = choose(collect(self.matcher))
            self.calibration = report
        log.info(
            "thresholds calibrated: answer=%.3f margin=%.3f clarify=%.3f automatic=%s",
            report.thresholds.answer,
            report.thresholds.margin,
            report.thresholds.clarify,
            report.automatic,
        )
        return report

    def _schedule_calibration(self, delay: float) -> None:
        """Debounce: every change restarts the wait, so a burst of edits costs one calibration."""
        if self._timer is not None:
            self._timer.cancel()
        timer = threading.Timer(delay, self._calibrate_quietly)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _calibrate_quietly(self) -> None:
        try:
            self.recalibrate()
        except Exception:  # a background thread must not die silently with a half-set state
            log.exception("threshold calibration failed; previous thresholds kept")

    def close(self) -> None:
        """Stop a pending calibration (tests, shutdown)."""
        if self._timer is not None:
            self._timer.cancel()

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
            chain = self._replacement(rec)
            if chain is not None:
                if chain[1] is None:  # replaced, but nothing in the chain is in force any more
                    flags.append(f"{rec.id}: 来源文件已被替代，替代文件也已失效")
                    continue
                hits.append(h)  # still matched; answered with the replacement's passage
                flags.append(f"{rec.id}: 来源文件已被替代")
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
            replaced = self._superseded(rec, query, score=top, hits=views, flags=tuple(flags))
            if replaced is not None:
                return replaced
            return self._with_link(
                AskResult(
                    "answer",
                    query,
                    answer=rec.answer,
                    faq_id=rec.id,
                    score=top,
                    hits=views,
                    sources=self._faq_sources(rec),
                    unit=rec.unit,
                    flags=tuple(flags),
                ),
                rec,
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
            sources = tuple(self._passage_source(p) for p in passages)
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
        replaced = self._superseded(rec, rec.question, score=1.0, hits=(), flags=())
        if replaced is not None:
            return replaced
        chain = self._replacement(rec)
        if chain is not None and chain[1] is None:
            return None  # replaced, and nothing in force: not an answer any more
        return self._with_link(
            AskResult(
                "answer",
                rec.question,
                answer=rec.answer,
                faq_id=rec.id,
                score=1.0,
                sources=self._faq_sources(rec),
                unit=rec.unit,
            ),
            rec,
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
        return (self._source(pol, rec.source_article),)

    def welcome_pins(self) -> list[str]:
        """The FAQ ids staff pinned for the welcome message, in order (knowledge.welcome)."""
        from knowledge.welcome import WelcomePins

        return WelcomePins(self.sessions).get()

    # --- citations, replacements and service links ----------------------------------------------
    def _source(self, pol: PolicyRecord, article: str | None) -> Source:
        """A citation of a stored policy: `article_url` is its article in the library; with a public
        base URL configured, the citation's link (`url`) points there too, else to the document."""
        anchor = article_link(pol.id, article)
        url = f"{self.public_base_url}{anchor}" if self.public_base_url else pol.url
        return Source(pol.title, pol.doc_no, article, pol.status, url, pol.id, anchor)

    def _passage_source(self, p: PassageHit) -> Source:
        pol = self.policies.cached(p.policy_id)
        if pol is None:
            return Source(p.title, p.doc_no, p.label, p.status, p.url, p.policy_id)
        return self._source(pol, p.label)

    def _replacement(self, rec: FaqRecord) -> tuple[PolicyRecord, PolicyRecord | None] | None:
        """(source, its replacement in force or None) when the FAQ's source policy was superseded
        by another; None when it was not replaced."""
        if not rec.source_policy:
            return None
        pol = self.policies.cached(rec.source_policy)
        if pol is None or pol.status not in SUPERSEDED_STATUSES or not pol.replaced_by:
            return None
        return pol, self.policies.current_replacement(pol.id)

    def _superseded(
        self, rec: FaqRecord, query: str, *, score: float, hits: tuple[HitView, ...], flags: tuple[str, ...]
    ) -> AskResult | None:
        """The answer for an FAQ whose source was superseded: the replacement's best passage."""
        pair = self._replacement(rec)
        if pair is None:
            return None
        old, new = pair
        if new is None:
            return None
        passage = self.policies.best_passage(new.id, query, article=rec.source_article)
        new_source = self._source(new, passage.label if passage else None)
        return AskResult(
            "passage",
            query,
            score=score,
            hits=hits,
            sources=(new_source,),
            passages=(passage,) if passage else (),
            unit=rec.unit,
            flags=flags,
            superseded=Superseded(rec.id, old.status, self._source(old, rec.source_article), new_source),
        )

    def _with_link(self, result: AskResult, rec: FaqRecord) -> AskResult:
        """The answer's service link (the FAQ's, else its source policy's) and whether it is broken."""
        url = rec.service_url
        if not url and rec.source_policy:
            pol = self.policies.cached(rec.source_policy)
            url = pol.service_url if pol else None
        if not url:
            return result
        return replace(result, service_url=url, link_broken=self.links.is_broken(url))


def _entry(r: FaqRecord):  # type: ignore[no-untyped-def]
    from knowledge.matcher import IndexEntry

    return IndexEntry(r.id, r.question, tuple(r.similar), tuple(r.tags))


def _terms(records: list[FaqRecord]) -> list[str]:
    """Domain words for jieba: tags and short policy terms kept by the store."""
    out: list[str] = []
    for r in records:
        out.extend(t for t in r.tags if 2 <= len(t) <= 12)
    return out
