"""Offline evaluation of the FAQ matcher on a labelled query set: loaders for the JSON-lines FAQ and
query files (bench/ and `policybot kb eval`), and `evaluate`, which indexes the entries, runs every
query through search + decide with the given thresholds and reports top-1/top-3 accuracy, the shares
answered directly and right or given a clarify that offers the right FAQ, the out-of-scope rejection
rate, the false-answer rate and per-query latency."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from knowledge.errors import InvalidInput
from knowledge.matcher import IndexEntry, Matcher, Thresholds
from knowledge.text import TextProcessor


def _read_jsonl(path: str | Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"无法读取文件：{p.name}", f"cannot read {p}: {exc}") from exc
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"文件第{no}行不是有效的JSON", f"{p}:{no}: invalid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise InvalidInput(f"文件第{no}行应为JSON对象", f"{p}:{no}: expected an object")
        rows.append(row)
    return rows


def _str_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str) and v.strip())
    return ()


def load_faq_jsonl(path: str | Path) -> list[IndexEntry]:
    """FAQ rows `{"id", "question", "similar": [...], "tags": [...]}` as index entries."""
    out: list[IndexEntry] = []
    for no, row in enumerate(_read_jsonl(path), 1):
        faq_id, question = row.get("id"), row.get("question")
        if not isinstance(faq_id, str | int) or not isinstance(question, str) or not question.strip():
            raise InvalidInput(f"第{no}条FAQ缺少id或问题", f"{path}: row {no}: missing id or question")
        out.append(
            IndexEntry(str(faq_id), question, _str_tuple(row.get("similar")), _str_tuple(row.get("tags")))
        )
    return out


def load_queries_jsonl(path: str | Path) -> list[tuple[str, str | None]]:
    """Query rows `{"query", "expected_id"}`; expected_id null means out of scope."""
    out: list[tuple[str, str | None]] = []
    for no, row in enumerate(_read_jsonl(path), 1):
        query, expected = row.get("query"), row.get("expected_id")
        if not isinstance(query, str):
            raise InvalidInput(f"第{no}条查询缺少问题文本", f"{path}: row {no}: missing query")
        out.append((query, None if expected is None else str(expected)))
    return out


def evaluate(
    entries: Sequence[IndexEntry],
    queries: Sequence[tuple[str, str | None]],
    thresholds: Thresholds,
    text: TextProcessor | None = None,
    *,
    make_matcher: Callable[[], Matcher] | None = None,
) -> dict[str, float]:
    """Metrics with keys n, top1, top3, answer_right, clarify_right, oos_reject, false_answer, p50_ms,
    p99_ms.

    top1/top3 over in-scope queries; answer_right = in-scope queries answered directly with the right
    FAQ, clarify_right = in-scope queries given a clarify that offers the right FAQ (both shares of the
    in-scope queries); oos_reject = out-of-scope queries decided "none";
    false_answer = (in-scope answered with the wrong FAQ + out-of-scope answered) / n;
    latency = search + decide per query. `make_matcher` builds a differently configured matcher
    (benchmark ablations).
    """
    matcher = make_matcher() if make_matcher is not None else Matcher(text)
    matcher.build(entries)
    matcher.search("预热")  # load jieba and friends outside the timed loop
    n_in = n_out = top1 = top3 = rejected = wrong = right = clarify_right = 0
    latencies: list[float] = []
    for query, expected in queries:
        t0 = time.perf_counter()
        hits = matcher.search(query, k=5)
        decision = matcher.decide(hits, thresholds)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        ids = [h.faq_id for h in hits]
        if expected is None:
            n_out += 1
            if decision.kind == "none":
                rejected += 1
            elif decision.kind == "answer":
                wrong += 1
        else:
            n_in += 1
            top1 += int(ids[:1] == [expected])
            top3 += int(expected in ids[:3])
            if decision.kind == "answer":
                ok = decision.hits[0].faq_id == expected
                right += ok
                wrong += not ok
            elif decision.kind == "clarify":
                clarify_right += any(h.faq_id == expected for h in decision.hits)
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(round(p * (len(latencies) - 1))))], 3)

    n = len(queries)
    return {
        "n": n,
        "top1": round(top1 / n_in, 4) if n_in else 0.0,
        "top3": round(top3 / n_in, 4) if n_in else 0.0,
        "answer_right": round(right / n_in, 4) if n_in else 0.0,
        "clarify_right": round(clarify_right / n_in, 4) if n_in else 0.0,
        "oos_reject": round(rejected / n_out, 4) if n_out else 0.0,
        "false_answer": round(wrong / n, 4) if n else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }
