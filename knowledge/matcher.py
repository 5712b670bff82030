"""FAQ matcher: an in-memory inverted index over the store's phrasings (every FAQ's standard question
and its similar phrasings) that answers `search(question) -> [Hit]` with one score in [0, 1] per FAQ,
and `decide(hits, thresholds)` that turns scores into answer / clarify (top 3) / none. Features are
jieba words, single characters and pinyin bigrams (homophone typos) of the normalised text
(`knowledge.text`), weighted by IDF. Candidates come from the rarest query features' postings within
a fixed budget, so a query never scans every phrasing; candidates are then scored exactly with a
self-normalised weighted overlap (1.0 for an identical question of any length) blended with a
rapidfuzz edit ratio. Postings live in compact arrays, entries can be upserted and removed without a
rebuild, and `calibrate` proposes thresholds for a store from its own phrasings."""

from __future__ import annotations

import math
import statistics
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz

from knowledge.text import TextProcessor, is_cjk

MAX_QUERY_CHARS = 256  # after normalisation; a 20,000-character message is cut to its beginning
MAX_FAQ_CHARS = 512
MAX_PASSAGE_CHARS = 4000
# Feature kinds and their weight relative to IDF: single characters carry the match (they retrieve
# best on short colloquial questions), a whole jieba word adds a bonus, pinyin bigrams (duplicates of
# the characters for correctly typed text) are a small safety net for homophone typos.
KIND_WEIGHTS: dict[str, float] = {"w": 0.5, "c": 1.0, "p": 0.25}
# Blend of the exact weighted overlap and the rapidfuzz ratio in FAQ mode.
LEXICAL_WEIGHT = 0.7
POSTINGS_BUDGET = 60_000  # postings read per query for candidate generation
CANDIDATES = 128  # phrasings scored exactly per query


@dataclass(frozen=True)
class IndexEntry:
    faq_id: str
    question: str
    similar: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    faq_id: str
    score: float
    matched_text: str


@dataclass(frozen=True)
class Thresholds:
    """answer: minimum top score to answer directly; margin: minimum lead of the top hit over the
    second to answer rather than ask; clarify: minimum score for a hit to be offered as a choice."""

    answer: float = 0.50
    margin: float = 0.05
    clarify: float = 0.45


@dataclass(frozen=True)
class Decision:
    kind: Literal["answer", "clarify", "none"]
    hits: tuple[Hit, ...]


def _idf(df: npt.NDArray[np.int32] | npt.NDArray[np.int64], n: int) -> npt.NDArray[np.float64]:
    d = df.astype(np.float64)
    return np.log1p((n - d + 0.5) / (d + 0.5))


class Matcher:
    """Index of FAQ phrasings (mode "faq") or long policy passages (mode "passage").

    In passage mode the score is the share of the query (by feature weight) that the passage covers;
    no edit ratio, which is meaningless for long texts. Thread-safe: one lock guards the index.
    """

    def __init__(
        self,
        text: TextProcessor | None = None,
        mode: Literal["faq", "passage"] = "faq",
        *,
        kind_weights: dict[str, float] | None = None,
        lexical_weight: float = LEXICAL_WEIGHT,
    ) -> None:
        if mode not in ("faq", "passage"):
            raise ValueError(f"unknown matcher mode {mode!r}")
        self.text = text or TextProcessor()
        self.mode = mode
        # Ablations (bench/): a kind with weight 0 is not indexed at all.
        self._kind_weights = dict(KIND_WEIGHTS if kind_weights is None else kind_weights)
        self._lexical_weight = lexical_weight
        self._max_doc = MAX_FAQ_CHARS if mode == "faq" else MAX_PASSAGE_CHARS
        self._lock = threading.RLock()
        self._reset()

    # -- index storage -----------------------------------------------------------------------------
    def _reset(self) -> None:
        self._vocab: dict[str, int] = {}
        self._kind_w = array("f")  # per feature: kind weight
        self._df = array("i")  # per feature: live phrasings containing it
        self._postings: list[array[int]] = []  # per feature: phrasing ids (ascending)
        self._doc_feats = array("i")  # flat feature ids of every phrasing
        self._doc_offs = array("q", [0])  # CSR offsets into _doc_feats
        self._ph_slot = array("i")  # per phrasing: FAQ slot
        self._ph_alive = bytearray()
        self._ph_norm: list[str] = []
        self._ph_text: list[str] = []
        self._slot_ids: list[str] = []
        self._slot_of: dict[str, int] = {}
        self._faq_phrasings: dict[str, list[int]] = {}
        self._entries: dict[str, IndexEntry] = {}
        self._live = 0
        self._dead = 0
        self._text_version = self.text.version

    def __len__(self) -> int:
        """Number of FAQs (or passages) in the index."""
        return len(self._entries)

    @property
    def phrasing_count(self) -> int:
        return self._live

    def entries(self) -> list[IndexEntry]:
        with self._lock:
            return list(self._entries.values())

    def build(self, entries: Iterable[IndexEntry]) -> None:
        """Replace the index with these entries. Tags are added to the word dictionary first."""
        items: dict[str, IndexEntry] = {}
        for e in entries:
            items[e.faq_id] = e
        tags = {t for e in items.values() for t in e.tags if 2 <= len(t) <= 12 and all(is_cjk(c) for c in t)}
        if tags:
            self.text.add_words(tags)
        with self._lock:
            self._reset()
            for e in items.values():
                self._add(e)

    def upsert(self, entry: IndexEntry) -> None:
        """Add or replace one entry; visible to the next search."""
        with self._lock:
            self._ensure_current()
            if entry.faq_id in self._entries:
                self._drop(entry.faq_id)
            self._add(entry)
            self._maybe_compact()

    def remove(self, faq_id: str) -> None:
        """Remove one entry (no error if it is not indexed)."""
        with self._lock:
            self._ensure_current()
            if faq_id in self._entries:
                self._drop(faq_id)
                self._maybe_compact()

    def _ensure_current(self) -> None:
        """Rebuild if synonyms or words changed since the index was built (normalisation changed)."""
        if self._text_version != self.text.version:
            entries = list(self._entries.values())
            self._reset()
            for e in entries:
                self._add(e)

    def _maybe_compact(self) -> None:
        if self._dead > max(1024, self._live):
            entries = list(self._entries.values())
            self._reset()
            for e in entries:
                self._add(e)

    def _feature_id(self, feat: str, kind: str) -> int:
        fid = self._vocab.get(feat)
        if fid is None:
            # New feature (postings list bound once per _add, so append in place).
            fid = len(self._kind_w)
            self._vocab[feat] = fid
            self._kind_w.append(self._kind_weights[kind])
            self._df.append(0)
            self._postings.append(array("i"))
        return fid

    def _add(self, entry: IndexEntry) -> None:
        slot = self._slot_of.get(entry.faq_id)
        if slot is None:
            slot = len(self._slot_ids)
            self._slot_ids.append(entry.faq_id)
            self._slot_of[entry.faq_id] = slot
        self._entries[entry.faq_id] = entry
        ids: list[int] = []
        seen: set[str] = set()
        kw = self._kind_weights
        postings, df = self._postings, self._df
        for raw in (entry.question, *entry.similar):
            if not isinstance(raw, str):
                continue
            norm = self.text.normalise(raw, max_chars=self._max_doc * 4)[: self._max_doc]
            if not norm or norm in seen:
                continue
            seen.add(norm)
            feats = self.text.features(norm)
            fids = [self._feature_id(f, kind) for f, kind in feats.items() if kw.get(kind, 0.0) > 0.0]
            if not fids:
                continue
            pid = len(self._ph_slot)
            self._doc_feats.extend(fids)
            for fid in fids:
                postings[fid].append(pid)
                df[fid] += 1
            self._doc_offs.append(len(self._doc_feats))
            self._ph_slot.append(slot)
            self._ph_alive.append(1)
            self._ph_norm.append(norm)
            self._ph_text.append(raw)
            ids.append(pid)
            self._live += 1
        self._faq_phrasings[entry.faq_id] = ids
        self._text_version = self.text.version

    def _drop(self, faq_id: str) -> None:
        self._entries.pop(faq_id, None)
        for pid in self._faq_phrasings.pop(faq_id, []):
            if not self._ph_alive[pid]:
                continue
            self._ph_alive[pid] = 0
            for fid in self._doc_feats[self._doc_offs[pid] : self._doc_offs[pid + 1]]:
                self._df[fid] -= 1
            self._ph_norm[pid] = ""
            self._ph_text[pid] = ""
            self._live -= 1
            self._dead += 1

    # -- search ------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Best FAQs for the query, one Hit per FAQ (its best phrasing), highest score first.
        Empty for empty, unusable or unmatched input; never raises for any string."""
        if not isinstance(query, str):
            return []
        k = max(1, min(int(k), 100))
        qnorm = self.text.normalise(query, max_chars=MAX_QUERY_CHARS * 4)[:MAX_QUERY_CHARS].strip()
        if not qnorm:
            return []
        with self._lock:
            self._ensure_current()
            if self._live == 0:
                return []
            return self._search(qnorm, k)

    def _search(self, qnorm: str, k: int) -> list[Hit]:
        qfeats = self.text.features(qnorm)
        if not qfeats:
            return []
        n = self._live
        known: list[int] = []
        unknown_weight = 0.0
        max_idf = math.log1p((n + 0.5) / 0.5)
        for feat, kind in qfeats.items():
            kw = self._kind_weights.get(kind, 0.0)
            if kw <= 0.0:
                continue
            fid = self._vocab.get(feat)
            if fid is None or self._df[fid] <= 0:
                unknown_weight += max_idf * kw
            else:
                known.append(fid)
        if not known:
            return []
        df_all = np.frombuffer(self._df, dtype=np.int32)
        kw_all = np.frombuffer(self._kind_w, dtype=np.float32)
        qids = np.array(known, dtype=np.int64)
        qw = _idf(df_all[qids], n) * kw_all[qids]
        qnorm_weight = float(qw.sum()) + unknown_weight

        # Candidate generation: rarest features first, within a postings budget.
        order = np.argsort(df_all[qids], kind="stable")
        chunks: list[npt.NDArray[np.int32]] = []
        weights: list[npt.NDArray[np.float64]] = []
        used = 0
        for j in order:
            post = self._postings[int(qids[j])]
            if chunks and used + len(post) > POSTINGS_BUDGET:
                break
            arr = np.frombuffer(post, dtype=np.int32)
            if len(arr) > POSTINGS_BUDGET:
                arr = arr[:POSTINGS_BUDGET]
            chunks.append(arr)
            weights.append(np.full(len(arr), qw[j]))
            used += len(arr)
        all_ids = np.concatenate(chunks)
        acc = np.bincount(all_ids, weights=np.concatenate(weights), minlength=len(self._ph_slot))
        alive = np.frombuffer(self._ph_alive, dtype=np.uint8)
        acc[alive[: len(acc)] == 0] = 0.0
        nz = np.flatnonzero(acc)
        if len(nz) == 0:
            return []
        if len(nz) > CANDIDATES:
            top = np.argpartition(acc[nz], -CANDIDATES)[-CANDIDATES:]
            cands = nz[top]
        else:
            cands = nz

        # Exact weighted overlap for the candidates (all query features, common ones included).
        offs = np.frombuffer(self._doc_offs, dtype=np.int64)
        starts = offs[cands]
        lens = offs[cands + 1] - starts
        seg = np.concatenate(([0], np.cumsum(lens)[:-1]))
        flat_idx = np.repeat(starts - seg, lens) + np.arange(int(lens.sum()))
        flat = np.frombuffer(self._doc_feats, dtype=np.int32)[flat_idx]
        fw = _idf(df_all[flat], n) * kw_all[flat]
        inq = np.isin(flat, qids)
        overlap = np.add.reduceat(fw * inq, seg)
        dnorm = np.add.reduceat(fw, seg)
        if self.mode == "faq":
            lexical = 2.0 * overlap / (qnorm_weight + dnorm)
        else:
            lexical = overlap / qnorm_weight
        lexical = np.clip(lexical, 0.0, 1.0)

        # Rank: the best phrasing per FAQ; in FAQ mode blend in the edit ratio.
        best: dict[int, tuple[float, int]] = {}
        if self.mode == "faq":
            pre = np.argsort(-lexical)[: max(4 * k, 32)]
            q_compact = qnorm.replace(" ", "")
            for i in pre:
                pid = int(cands[i])
                ratio = fuzz.ratio(q_compact, self._ph_norm[pid].replace(" ", "")) / 100.0
                score = self._lexical_weight * float(lexical[i]) + (1.0 - self._lexical_weight) * ratio
                slot = self._ph_slot[pid]
                if slot not in best or score > best[slot][0]:
                    best[slot] = (score, pid)
        else:
            for i in np.argsort(-lexical)[: max(8 * k, 32)]:
                pid = int(cands[i])
                slot = self._ph_slot[pid]
                score = float(lexical[i])
                if slot not in best or score > best[slot][0]:
                    best[slot] = (score, pid)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], self._slot_ids[kv[0]]))[:k]
        return [
            Hit(self._slot_ids[slot], round(min(1.0, max(0.0, score)), 6), self._ph_text[pid])
            for slot, (score, pid) in ranked
            if score > 0.0
        ]

    # -- decision ----------------------------------------------------------------------------------
    def decide(self, hits: Sequence[Hit], thresholds: Thresholds) -> Decision:
        return decide(hits, thresholds)


def decide(hits: Sequence[Hit], thresholds: Thresholds) -> Decision:
    """answer (one hit) when the top score reaches `answer` and leads the second by `margin`;
    clarify with up to three hits at or above `clarify`; otherwise none."""
    ranked = sorted(hits, key=lambda h: -h.score)
    if not ranked or ranked[0].score < thresholds.clarify:
        return Decision("none", ())
    top = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else 0.0
    if top.score >= thresholds.answer and top.score - second >= thresholds.margin:
        return Decision("answer", (top,))
    return Decision("clarify", tuple(h for h in ranked[:3] if h.score >= thresholds.clarify))


# -- calibration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationReport:
    thresholds: Thresholds
    expected_answer_rate: float  # held-out paraphrases answered with their own FAQ
    expected_decline_rate: float  # negatives (phrasings of FAQs not in the index) declined
    n_held_out: int
    n_negatives: int
    notes: tuple[str, ...] = field(default_factory=tuple)


MIN_CALIBRATION_PAIRS = 20
MIN_CALIBRATION_NEGATIVES = 20


def calibrate(entries: Sequence[IndexEntry], text: TextProcessor | None = None) -> CalibrationReport:
    """Propose thresholds for a store from its own phrasings.

    Positives: each similar phrasing (or, for an FAQ with one, its standard question) is held out in
    turn and searched against the index without it; its own FAQ should come first. Negatives: a
    sample of FAQs is removed from the index whole and their standard questions searched; nothing
    should be answered. The answer threshold is the lowest score that keeps the negatives' top scores
    at or below a 5 % false-answer rate; clarify sits where 90 % of negatives are declined. With too
    few pairs the defaults are returned and the notes say so.
    """
    text = text or TextProcessor()
    entries = [e for e in entries if isinstance(e.question, str) and e.question.strip()]
    notes: list[str] = []
    defaults = Thresholds()
    matcher = Matcher(text)
    matcher.build(entries)

    pos_scores: list[float] = []
    pos_correct: list[bool] = []
    pos_margin_ok: list[float] = []
    for e in entries:
        phrasings = [e.question, *e.similar]
        if len(phrasings) < 2:
            continue
        for i, held in enumerate(phrasings):
            rest = [p for j, p in enumerate(phrasings) if j != i]
            matcher.upsert(IndexEntry(e.faq_id, rest[0], tuple(rest[1:]), e.tags))
            hits = matcher.search(held, k=3)
            if hits:
                pos_scores.append(hits[0].score)
                pos_correct.append(hits[0].faq_id == e.faq_id)
                if hits[0].faq_id == e.faq_id:
                    pos_margin_ok.append(hits[0].score - (hits[1].score if len(hits) > 1 else 0.0))
            else:
                pos_scores.append(0.0)
                pos_correct.append(False)
        matcher.upsert(e)

    # Negatives: leave-one-FAQ-out, every standard question (capped for big stores).
    neg_scores: list[float] = []
    step = max(1, len(entries) // 300)
    for e in entries[::step]:
        matcher.remove(e.faq_id)
        hits = matcher.search(e.question, k=1)
        neg_scores.append(hits[0].score if hits else 0.0)
        matcher.upsert(e)

    n_pos = len(pos_scores)
    if len(neg_scores) < MIN_CALIBRATION_NEGATIVES:
        notes.append(
            f"too little data to calibrate ({len(neg_scores)} FAQs; need {MIN_CALIBRATION_NEGATIVES}): "
            "default thresholds kept"
        )
        answer_t, clarify_t = defaults.answer, defaults.clarify
    else:
        neg_sorted = sorted(neg_scores)
        q95 = neg_sorted[min(len(neg_sorted) - 1, int(math.ceil(0.95 * len(neg_sorted))) - 1)]
        q90 = neg_sorted[min(len(neg_sorted) - 1, int(math.ceil(0.90 * len(neg_sorted))) - 1)]
        answer_t = round(min(0.95, max(0.3, q95 + 0.01)), 3)
        clarify_t = round(min(answer_t, max(0.2, q90 + 0.01)), 3)
        notes.append(f"answer threshold just above 95% of negatives' top scores ({q95:.3f})")
        notes.append(f"clarify threshold just above 90% of negatives' top scores ({q90:.3f})")
    if n_pos < MIN_CALIBRATION_PAIRS:
        notes.append(
            f"only {n_pos} held-out paraphrases (FAQs with similar phrasings): "
            "the expected answer rate is rough; add similar phrasings to improve it"
        )
    margin_t = defaults.margin
    proposed = Thresholds(answer=answer_t, margin=margin_t, clarify=clarify_t)

    answered = sum(1 for s, ok in zip(pos_scores, pos_correct, strict=True) if ok and s >= answer_t)
    answer_rate = answered / n_pos if n_pos else 0.0
    decline_rate = sum(1 for s in neg_scores if s < clarify_t) / len(neg_scores) if neg_scores else 0.0
    if pos_margin_ok:
        notes.append(
            f"median lead of a correct top hit over the second: {statistics.median(pos_margin_ok):.3f}"
        )
    return CalibrationReport(
        thresholds=proposed,
        expected_answer_rate=round(answer_rate, 4),
        expected_decline_rate=round(decline_rate, 4),
        n_held_out=n_pos,
        n_negatives=len(neg_scores),
        notes=tuple(notes),
    )
