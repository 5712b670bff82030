"""Matcher evaluation on the dev set (/work/shared/data or $POLICYBOT_EVAL_DATA): the shipped matcher
with the thresholds `knowledge.calibration` sets from the FAQ file alone (what the service does), the
same with the built-in defaults, the previous matcher (no BM25), the ablations that document the
approaches tried, and two baselines measured in the same run (rapidfuzz process.extractOne over all
phrasings; BM25 over jieba words with bm25s). Nothing here is fitted to the queries.
Run: `python bench/matcher_eval.py`."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from knowledge.calibration import calibrate, choose, collect
from knowledge.evaluation import evaluate, load_faq_jsonl, load_queries_jsonl
from knowledge.matcher import IndexEntry, Matcher, Thresholds
from knowledge.text import TextProcessor, warm_up

DATA = Path(os.environ.get("POLICYBOT_EVAL_DATA", "/work/shared/data"))


def phrasings(entries: list[IndexEntry]) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    ids: list[str] = []
    for e in entries:
        for t in (e.question, *e.similar):
            texts.append(t)
            ids.append(e.faq_id)
    return texts, ids


def ranked_ids(scored: list[tuple[str, float]], k: int = 3) -> list[str]:
    out: list[str] = []
    for fid, _ in sorted(scored, key=lambda x: -x[1]):
        if fid not in out:
            out.append(fid)
        if len(out) == k:
            break
    return out


def baseline_rapidfuzz(entries: list[IndexEntry], queries: list[tuple[str, str | None]]) -> dict[str, float]:
    from rapidfuzz import process

    texts, ids = phrasings(entries)
    t1 = t3 = n = 0
    lat: list[float] = []
    for q, exp in queries:
        t0 = time.perf_counter()
        best = process.extractOne(q, texts)
        lat.append((time.perf_counter() - t0) * 1000)
        if exp is None:
            continue
        n += 1
        t1 += int(best is not None and ids[best[2]] == exp)
        top = process.extract(q, texts, limit=10)
        t3 += int(exp in ranked_ids([(ids[i], s) for _, s, i in top]))
    return {"top1": t1 / n, "top3": t3 / n, "p50_ms": statistics.median(lat)}


def baseline_bm25(entries: list[IndexEntry], queries: list[tuple[str, str | None]]) -> dict[str, float]:
    import bm25s
    import jieba
    import numpy as np

    texts, ids = phrasings(entries)
    corpus = [[w for w in jieba.lcut(t) if w.strip()] or ["<empty>"] for t in texts]
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    t1 = t3 = n = 0
    lat: list[float] = []
    for q, exp in queries:
        t0 = time.perf_counter()
        toks = [w for w in jieba.lcut(q) if w.strip() and w in retriever.vocab_dict]
        scores = retriever.get_scores(toks) if toks else np.zeros(len(texts))
        top = np.argsort(-scores)[:10]
        lat.append((time.perf_counter() - t0) * 1000)
        if exp is None:
            continue
        n += 1
        r = ranked_ids([(ids[i], float(scores[i])) for i in top])
        t1 += int(r[:1] == [exp])
        t3 += int(exp in r)
    return {"top1": t1 / n, "top3": t3 / n, "p50_ms": statistics.median(lat)}


def main() -> int:
    entries = load_faq_jsonl(DATA / "faq.jsonl")
    queries = load_queries_jsonl(DATA / "queries.jsonl")
    warm_up()
    defaults = Thresholds()
    rep = calibrate(entries)
    auto = rep.thresholds
    print(
        f"data: {DATA} ({len(entries)} FAQs, {len(queries)} queries, "
        f"{sum(1 for _, e in queries if e is None)} out of scope)"
    )
    print(
        f"built-in default thresholds: answer={defaults.answer} margin={defaults.margin} clarify={defaults.clarify}"
    )
    print(f"automatic thresholds (calibrate() on the FAQ file): {auto}")
    print()
    head = "| top-1 | top-3 | right direct | clarify right | OOS rejected | false answer | p50 ms |"
    print(f"| {'method':<62} {head}")
    print(
        f"|{'-' * 64}|-------|-------|--------------|---------------|--------------|--------------|--------|"
    )

    def row(name: str, make: Callable[[], Matcher] | None, th: Thresholds = defaults) -> dict[str, float]:
        r = evaluate(entries, queries, th, make_matcher=make)
        print(
            f"| {name:<62} | {r['top1']:.3f} | {r['top3']:.3f} | {r['answer_right']:>12.3f} | "
            f"{r['clarify_right']:>13.3f} | {r['oos_reject']:>12.3f} | {r['false_answer']:>12.3f} | "
            f"{r['p50_ms']:>6.2f} |"
        )
        return r

    tp = TextProcessor()
    shipped = row("shipped, automatic thresholds", None, auto)
    row("shipped, built-in defaults", None)
    before = row("previous matcher (no BM25), built-in defaults", lambda: Matcher(tp, bm25_share=0.0))
    old = Matcher(tp, bm25_share=0.0)
    old.build(entries)
    old_auto = choose(collect(old)).thresholds
    row(
        f"previous matcher, the same rule ({old_auto.answer}/{old_auto.margin}/{old_auto.clarify})",
        lambda: Matcher(tp, bm25_share=0.0),
        old_auto,
    )
    for share in (0.3, 0.7, 1.0):
        row(
            f"B{share} BM25 share of the lexical score {share}",
            lambda share=share: Matcher(tp, bm25_share=share),
        )
    ablations: list[tuple[str, dict[str, float], float]] = [
        ("A1 jieba words only, lexical only", {"w": 1.0, "c": 0.0, "p": 0.0}, 1.0),
        ("A2 jieba words only + 0.3 ratio", {"w": 1.0, "c": 0.0, "p": 0.0}, 0.7),
        ("A3 single chars only, lexical only", {"w": 0.0, "c": 1.0, "p": 0.0}, 1.0),
        ("A4 single chars only + 0.3 ratio", {"w": 0.0, "c": 1.0, "p": 0.0}, 0.7),
        ("A7 shipped features, lexical only (no rapidfuzz)", {"w": 0.5, "c": 1.0, "p": 0.25}, 1.0),
    ]
    for name, kw, lw in ablations:
        row(name, lambda kw=kw, lw=lw: Matcher(tp, kind_weights=kw, lexical_weight=lw))
    rf = baseline_rapidfuzz(entries, queries)
    bm = baseline_bm25(entries, queries)
    for name, r in (
        ("baseline: rapidfuzz process.extractOne (WRatio), raw text", rf),
        ("baseline: BM25 (bm25s) over jieba words", bm),
    ):
        print(
            f"| {name:<62} | {r['top1']:.3f} | {r['top3']:.3f} | {'n/a':>12} | {'n/a':>13} | {'n/a':>12} | "
            f"{'n/a':>12} | {r['p50_ms']:>6.2f} |"
        )
    print()
    print(
        f"top-1 {before['top1']:.3f} -> {shipped['top1']:.3f}, top-3 {before['top3']:.3f} -> {shipped['top3']:.3f}, "
        f"right direct {before['answer_right']:.3f} -> {shipped['answer_right']:.3f} (previous matcher at the "
        "defaults -> shipped at its automatic thresholds)"
    )
    print(
        f"false-answer rate {shipped['false_answer']:.3f} (goal <= 0.05), "
        f"OOS rejection {shipped['oos_reject']:.3f} (goal >= 0.95)"
    )
    print()
    print(
        f"calibrate() on this store: {rep.thresholds}, automatic={rep.automatic}, "
        f"{rep.n_held_out} held out, {rep.n_negatives} negatives; expected {rep.expected}"
    )
    for note in rep.notes:
        print(f"  - {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
