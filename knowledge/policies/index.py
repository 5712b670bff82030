"""The in-memory search over policy passages: this module owns `PassageIndex`, a lazily built
`knowledge.matcher.Matcher` over the passages of current policies (and, on demand, of all policies)
that follows the store's version stamp, plus the copy of every policy record keyed by id, normalised
文号 and title that the answering hot path reads instead of querying the database per hit. At most
every `refresh_seconds` the version stamp is read; when it moved and the policies changed (max seq,
count), the index is rebuilt; while the database is unreachable the last index keeps answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.models import Passage, Policy, current_version
from knowledge.policies.parsing import normalise_doc_no, squash_cjk_spaces
from knowledge.policies.records import PassageHit, PolicyRecord, to_record
from knowledge.policies.validity import INACTIVE_STATUSES

if TYPE_CHECKING:
    from knowledge.matcher import Matcher
    from knowledge.text import TextProcessor

log = logging.getLogger(__name__)


@dataclass
class _Index:
    signature: tuple[int, int]
    active: Matcher
    all: Matcher | None
    passages: dict[str, PassageHit]  # passage id -> hit template (score 0)
    active_ids: frozenset[str]
    records: dict[str, PolicyRecord]  # id, normalised 文号 and title -> record (for the hot path)


class PassageIndex:
    """The passage search index of a policy store, rebuilt when the store's policies change."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        refresh_seconds: float = 2.0,
        text: TextProcessor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self._text = text
        self._clock = clock
        self._lock = threading.Lock()
        self._index: _Index | None = None
        self._seen_version = -1
        self._checked_at = 0.0

    def search(self, query: str, k: int = 3, *, include_inactive: bool = False) -> list[PassageHit]:
        """Best passages for a question; passages of 失效/废止 policies only with include_inactive."""
        if not isinstance(query, str) or not query.strip():
            return []
        k = max(1, min(int(k), 50))
        index = self.current()
        if include_inactive:
            with self._lock:
                if index.all is None:
                    index.all = self._matcher(index.passages.values())
                matcher = index.all
        else:
            matcher = index.active
        out: list[PassageHit] = []
        for h in matcher.search(query, k=k * 4):
            tpl = index.passages.get(h.faq_id)
            if tpl is None:
                continue
            if not include_inactive and tpl.status in INACTIVE_STATUSES:
                continue
            out.append(_with_score(tpl, h.score))
        if len(out) > 1:
            # Coverage scores tie often (every passage on 依申请公开 covers the same query words):
            # among equal scores, prefer the passage where the query's words recur most densely.
            words = [w for w in matcher.text.tokens(query) if len(w) >= 2]
            out.sort(key=lambda p: (-round(p.score, 3), -_density(words, p.heading + p.text), p.passage_id))
        return out[:k]

    def best_in(self, policy_id: str, query: str, *, article: str | None = None) -> PassageHit | None:
        """The passage of one policy that best answers a question: the best-scoring one, else the
        passage with the given article label, else its first article (the cover letter last)."""
        index = self.current()
        own = [t for t in index.passages.values() if t.policy_id == policy_id]
        if not own:
            return None
        matcher = index.active if any(str(t.passage_id) in index.active_ids for t in own) else None
        if matcher is not None and query.strip():
            ids = {str(t.passage_id): t for t in own}
            for h in matcher.search(query, k=200):
                tpl = ids.get(h.faq_id)
                if tpl is not None and h.score > 0:
                    return _with_score(tpl, h.score)
        by_label = [t for t in own if article and t.label == article]
        if by_label:
            return by_label[0]
        return next((t for t in own if t.label not in ("印发通知", "前言")), own[0])

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the passage index now if the policies changed; True when it was rebuilt."""
        before = self._index
        self.current(force=force)
        return self._index is not before

    def current(self, *, force: bool = False) -> _Index:
        now = self._clock()
        with self._lock:
            index = self._index
            if index is not None and not force and now - self._checked_at < self.refresh_seconds:
                return index
            self._checked_at = now
            with self.sessions() as s:
                try:
                    version = current_version(s)
                except SQLAlchemyError as exc:  # database unreachable: keep answering from memory
                    if index is None or force:
                        raise
                    log.warning("policy index refresh skipped: %s", type(exc).__name__)
                    return index
                if index is not None and not force and version == self._seen_version:
                    return index
                sig_row = s.execute(
                    select(func.coalesce(func.max(Policy.seq), 0), func.count(Policy.id))
                ).one()
                signature = (int(sig_row[0]), int(sig_row[1]))
                self._seen_version = version
                if index is not None and not force and signature == index.signature:
                    return index
                rows = s.execute(
                    select(Passage, Policy)
                    .join(Policy, Passage.policy_id == Policy.id)
                    .order_by(Policy.id, Passage.ordinal)
                ).all()
                templates: dict[str, PassageHit] = {}
                for pas, pol in rows:
                    templates[str(pas.id)] = PassageHit(
                        policy_id=pol.id,
                        passage_id=pas.id,
                        label=pas.label,
                        text=pas.text,
                        score=0.0,
                        title=pol.title,
                        doc_no=pol.doc_no,
                        status=pol.status,
                        issuer=pol.issuer,
                        url=pol.url,
                        heading=pas.heading,
                    )
                counts: dict[str, int] = {}
                for t in templates.values():
                    counts[t.policy_id] = counts.get(t.policy_id, 0) + 1
                records: dict[str, PolicyRecord] = {}
                for pol in s.execute(select(Policy).order_by(Policy.id)).scalars():
                    rec = to_record(pol, counts.get(pol.id, 0))
                    for key in (
                        squash_cjk_spaces(pol.title),
                        normalise_doc_no(pol.doc_no) if pol.doc_no else "",
                    ):
                        if key:
                            records.setdefault(key, rec)
                    records[pol.id] = rec
            active = [t for t in templates.values() if t.status not in INACTIVE_STATUSES]
            self._index = _Index(
                signature=signature,
                active=self._matcher(active),
                all=None,
                passages=templates,
                active_ids=frozenset(str(t.passage_id) for t in active),
                records=records,
            )
            log.info("policy passage index built passages=%d active=%d", len(templates), len(active))
            return self._index

    def _matcher(self, passages: Iterable[PassageHit]) -> Matcher:
        from knowledge.matcher import IndexEntry, Matcher

        if self._text is None:
            from knowledge.text import TextProcessor

            self._text = TextProcessor()
        m = Matcher(self._text, mode="passage")
        m.build(
            IndexEntry(faq_id=str(p.passage_id), question=(p.heading + "\n" + p.text).strip())
            for p in passages
        )
        return m


def _density(words: Sequence[str], text: str) -> float:
    """Saturated term frequency of the query's words, mildly normalised by passage length."""
    if not words:
        return 0.0
    tf = sum(min(text.count(w), 3) for w in set(words))
    return tf / (1.0 + len(text) / 1000.0)


def _with_score(tpl: PassageHit, score: float) -> PassageHit:
    from dataclasses import replace

    return replace(tpl, score=score)
