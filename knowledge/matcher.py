"""FAQ matcher: an in-memory inverted index over the store's phrasings (every FAQ's standard question
and its similar phrasings) that answers `search(question) -> [Hit]` with one score in [0, 1] per FAQ,
and `decide(hits, thresholds)` that turns scores into answer / clarify (top 3) / none. Features are
jieba words, single characters and pinyin bigrams (homophone typos) of the normalised text
(`knowledge.text`), weighted by IDF. Candidates come from the rarest query features' postings within
a fixed budget, so a query never scans every phrasing; candidates are then scored exactly with a
self-normalised weighted overlap and a self-normalised BM25 over single characters (each 1.0 for an
identical question of any length), blended with a rapidfuzz edit ratio. Postings live in compact arrays, entries can be upserted and removed without a
rebuild; `knowledge.calibration` sets the thresholds of a store from its own phrasings."""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
# Blend of the lexical score and the rapidfuzz ratio in FAQ mode.
LEXICAL_WEIGHT = 0.7
# Share of the lexical score taken by BM25 over single characters (self-normalised), the rest being
# the weighted Dice overlap: the two lexical signals weigh the same (bench/RESULTS.md, round 3).
BM25_SHARE = 0.5
BM25_K1 = 1.2  # the textbook BM25 constants, not fitted
BM25_B = 0.75
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
        bm25_share: float = BM25_SHARE,
    ) -> None:
        if mode not in ("faq", "passage"):
            raise ValueError(f"unknown matcher mode {mode!r}")
        self.text = text or TextProcessor()
        self.mode = mode
        # Ablations (bench/): a kind with weight 0 is not indexed at all.
        self._kind_weights = dict(KIND_WEIGHTS if kind_weights is None else kind_weights)
        self._lexical_weight = lexical_weight
        self._bm25_share = bm25_share if mode == "faq" else 0.0
        self._max_doc = MAX_FAQ_CHARS if mode == "faq" else MAX_PASSAGE_CHARS
        self._lock = threading.RLock()
        self._reset()

    # -- index storage -----------------------------------------------------------------------------
    def _reset(self) -> None:
        self._vocab: dict[str, int] = {}
        self._kind_w = array("f")  # per feature: kind weight
        self._is_char = bytearray()  # per feature: 1 for a single-character feature (BM25)
        self._df = array("i")  # per feature: live phrasings containing it
        self._postings: list[array[int]] = []  # per feature: phrasing ids (ascending)
        self._doc_feats = array("i")  # flat feature ids of every phrasing
        self._doc_offs = array("q", [0])  # CSR offsets into _doc_feats
        self._ph_slot = array("i")  # per phrasing: FAQ slot
        self._ph_alive = bytearray()
        self._ph_chars = array("i")  # per phrasing: distinct characters (BM25 document length)
        self._live_chars = 0
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
            self._is_char.append(1 if kind == "c" else 0)
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
            n_chars = sum(1 for kind in feats.values() if kind == "c")
            self._ph_chars.append(n_chars)
            self._live_chars += n_chars
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
            self._live_chars -= self._ph_chars[pid]
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

    def search_without(self, query: str, k: int, faq_id: str, phrasing: str | None = None) -> list[Hit]:
        """`search` as if one phrasing of `faq_id` (or, with `phrasing` None, the whole FAQ) were not
        in the index; the index itself is not changed (calibration runs beside live searches)."""
        if not isinstance(query, str):
            return []
        k = max(1, min(int(k), 100))
        qnorm = self.text.normalise(query, max_chars=MAX_QUERY_CHARS * 4)[:MAX_QUERY_CHARS].strip()
        if not qnorm:
            return []
        with self._lock:
            self._ensure_current()
            pids = self._faq_phrasings.get(faq_id, [])
            if phrasing is not None:
                norm = self.text.normalise(phrasing, max_chars=self._max_doc * 4)[: self._max_doc]
                pids = [p for p in pids if self._ph_norm[p] == norm]
            if self._live - len(pids) <= 0:
                return []
            return self._search(qnorm, k, np.array(pids, dtype=np.int64))

    def score_of(self, query: str, faq_id: str) -> float:
        """The score `search` would give `faq_id` for the query (0.0 when it shares nothing)."""
        if not isinstance(query, str):
            return 0.0
        qnorm = self.text.normalise(query, max_chars=MAX_QUERY_CHARS * 4)[:MAX_QUERY_CHARS].strip()
        with self._lock:
            self._ensure_current()
            pids = self._faq_phrasings.get(faq_id)
            if not qnorm or not pids:
                return 0.0
            hits = self._search(qnorm, 1, only=np.array(pids, dtype=np.int64))
        return hits[0].score if hits else 0.0

    def similarity(self, a: str, b: str) -> float:
        """How alike two questions are by this index's own scoring (FAQ mode: the weighted Dice,
        the character BM25 and the edit ratio, with the store's IDF; a feature the store does not
        know weighs the most), as if one of them were a phrasing; the mean of both directions.
        Used to tell whether two citizens' questions are one intent."""
        if not isinstance(a, str) or not isinstance(b, str):
            return 0.0
        na = self.text.normalise(a, max_chars=MAX_QUERY_CHARS * 4)[:MAX_QUERY_CHARS].strip()
        nb = self.text.normalise(b, max_chars=MAX_QUERY_CHARS * 4)[:MAX_QUERY_CHARS].strip()
        if not na or not nb:
            return 0.0
        if na == nb:
            return 1.0
        with self._lock:
            fa, fb = self.text.features(na), self.text.features(nb)
            n = max(1, self._live)
            max_idf = math.log1p((n + 0.5) / 0.5)
            avg = max(1.0, self._live_chars / self._live) if self._live else 1.0

            def idf(f: str) -> float:
                fid = self._vocab.get(f)
                if fid is None or self._df[fid] <= 0:
                    return max_idf
                return math.log1p((n - self._df[fid] + 0.5) / (self._df[fid] + 0.5))

        kw = self._kind_weights
        w = {f: idf(f) * kw.get(kind, 0.0) for f, kind in (fa | fb).items()}
        wa = sum(w[f] for f in fa)
        wb = sum(w[f] for f in fb)
        shared = sum(w[f] for f in fa.keys() & fb.keys())
        lexical = 2.0 * shared / (wa + wb) if wa + wb > 0 else 0.0
        if self._bm25_share > 0.0 and kw.get("c", 0.0) > 0.0:
            ca = [f for f, k in fa.items() if k == "c"]
            cb = [f for f, k in fb.items() if k == "c"]
            both = sum(idf(f) for f in set(ca) & set(cb))

            def sat(length: float) -> float:
                return (BM25_K1 + 1.0) / (1.0 + BM25_K1 * (1.0 - BM25_B + BM25_B * length / avg))

            def bm(q: list[str], d: list[str]) -> float:
                qi = sum(idf(f) for f in q)
                return min(1.0, both * sat(len(d)) / (qi * sat(len(q)))) if qi > 0 else 0.0

            bm25 = (bm(ca, cb) + bm(cb, ca)) / 2.0
            lexical = (1.0 - self._bm25_share) * lexical + self._bm25_share * bm25
        ratio = fuzz.ratio(na.replace(" ", ""), nb.replace(" ", "")) / 100.0
        score = self._lexical_weight * lexical + (1.0 - self._lexical_weight) * ratio
        return round(min(1.0, max(0.0, score)), 6)

    def _search(
        self,
        qnorm: str,
        k: int,
        skip: npt.NDArray[np.int64] | None = None,
        only: npt.NDArray[np.int64] | None = None,
    ) -> list[Hit]:
        qfeats = self.text.features(qnorm)
        if not qfeats:
            return []
        n = self._live
        known: list[int] = []
        unknown_weight = 0.0
        unknown_chars = 0
        max_idf = math.log1p((n + 0.5) / 0.5)
        for feat, kind in qfeats.items():
            kw = self._kind_weights.get(kind, 0.0)
            if kw <= 0.0:
                continue
            fid = self._vocab.get(feat)
            if fid is None or self._df[fid] <= 0:
                unknown_weight += max_idf * kw
                unknown_chars += kind == "c"
            else:
                known.append(fid)
        if not known:
            return []
        df_all = np.frombuffer(self._df, dtype=np.int32)
        kw_all = np.frombuffer(self._kind_w, dtype=np.float32)
        qids = np.array(known, dtype=np.int64)
        qw = _idf(df_all[qids], n) * kw_all[qids]
        qnorm_weight = float(qw.sum()) + unknown_weight

        cands = self._candidates(qids, qw, df_all, skip, only)
        if cands is None:
            return []

        # Exact weighted overlap for the candidates (all query features, common ones included).
        offs = np.frombuffer(self._doc_offs, dtype=np.int64)
        starts = offs[cands]
        lens = offs[cands + 1] - starts
        seg = np.concatenate(([0], np.cumsum(lens)[:-1]))
        flat_idx = np.repeat(starts - seg, lens) + np.arange(int(lens.sum()))
        flat = np.frombuffer(self._doc_feats, dtype=np.int32)[flat_idx]
        idf_flat = _idf(df_all[flat], n)
        fw = idf_flat * kw_all[flat]
        inq = np.isin(flat, qids)
        overlap = np.add.reduceat(fw * inq, seg)
        dnorm = np.add.reduceat(fw, seg)
        if self.mode == "faq":
            lexical = 2.0 * overlap / (qnorm_weight + dnorm)
        else:
            lexical = overlap / qnorm_weight
        lexical = np.clip(lexical, 0.0, 1.0)
        if self._bm25_share > 0.0 and self._kind_weights.get("c", 0.0) > 0.0:
            is_char = np.frombuffer(self._is_char, dtype=np.uint8)
            matched = np.add.reduceat(idf_flat * (inq & (is_char[flat] == 1)), seg)
            q_chars = [fid for fid in known if self._is_char[fid]]
            q_idf = float(_idf(df_all[q_chars], n).sum()) + unknown_chars * max_idf
            bm25 = self._bm25(matched, cands, q_idf, len(q_chars) + unknown_chars)
            lexical = (1.0 - self._bm25_share) * lexical + self._bm25_share * bm25

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

    def _candidates(
        self,
        qids: npt.NDArray[np.int64],
        qw: npt.NDArray[np.float64],
        df_all: npt.NDArray[np.int32],
        skip: npt.NDArray[np.int64] | None,
        only: npt.NDArray[np.int64] | None,
    ) -> npt.NDArray[np.int64] | None:
        """Candidate generation: rarest features first, within a postings budget; phrasings in
        `skip` left out, only those in `only` kept. None when nothing shares a feature."""
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
        if skip is not None and len(skip):
            acc[skip[skip < len(acc)]] = 0.0
        if only is not None:
            keep = np.zeros(len(acc), dtype=bool)
            keep[only[only < len(acc)]] = True
            acc[~keep] = 0.0
        nz = np.flatnonzero(acc)
        if len(nz) == 0:
            return None
        if len(nz) > CANDIDATES:
            return np.asarray(nz[np.argpartition(acc[nz], -CANDIDATES)[-CANDIDATES:]], dtype=np.int64)
        return np.asarray(nz, dtype=np.int64)

    def _bm25(
        self, matched_idf: npt.NDArray[np.float64], cands: npt.NDArray[np.int64], q_idf: float, q_len: int
    ) -> npt.NDArray[np.float64]:
        """BM25 over single characters (term frequency 1: short questions rarely repeat one),
        divided by the query's score against itself so that 1.0 means every query character is
        matched by a document of the query's length; comparable across queries."""
        if q_idf <= 0.0 or self._live == 0:
            return np.zeros(len(cands))
        avg = max(1.0, self._live_chars / self._live)

        def sat(length: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64] | float:
            return (BM25_K1 + 1.0) / (1.0 + BM25_K1 * (1.0 - BM25_B + BM25_B * length / avg))

        lengths = np.frombuffer(self._ph_chars, dtype=np.int32)[cands].astype(np.float64)
        scores = matched_idf * sat(lengths) / (q_idf * float(sat(float(q_len))))
        return np.asarray(np.clip(scores, 0.0, 1.0), dtype=np.float64)

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
