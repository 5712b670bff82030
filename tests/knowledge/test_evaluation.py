"""Tests for knowledge.evaluation: loaders and metric definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.errors import InvalidInput
from knowledge.evaluation import evaluate, load_faq_jsonl, load_queries_jsonl
from knowledge.matcher import IndexEntry, Thresholds


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_loaders(tmp_path: Path) -> None:
    faq = write(
        tmp_path / "faq.jsonl",
        [{"id": "a", "question": "失业金怎么申请", "similar": ["怎么领失业金"], "tags": ["就业"]}],
    )
    q = write(
        tmp_path / "q.jsonl",
        [{"query": "失业金", "expected_id": "a"}, {"query": "放首歌", "expected_id": None}],
    )
    assert load_faq_jsonl(faq) == [IndexEntry("a", "失业金怎么申请", ("怎么领失业金",), ("就业",))]
    assert load_queries_jsonl(q) == [("失业金", "a"), ("放首歌", None)]


def test_loaders_reject_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_faq_jsonl(bad)
    assert "第2行" in err.value.user_message
    with pytest.raises(InvalidInput):
        load_faq_jsonl(write(tmp_path / "noq.jsonl", [{"id": "a"}]))
    with pytest.raises(InvalidInput):
        load_queries_jsonl(tmp_path / "missing.jsonl")


def test_metrics_follow_their_definitions() -> None:
    entries = [
        IndexEntry("unemp", "失业金怎么申请"),
        IndexEntry("pension", "养老金怎么计算"),
        IndexEntry("housing", "住房公积金可以提取吗"),
    ]
    queries: list[tuple[str, str | None]] = [
        ("失业金怎么申请", "unemp"),  # top-1, answered correctly
        ("养老金怎么计算", "housing"),  # answered with the wrong FAQ: a false answer
        ("明天早上六点叫我起床", None),  # rejected
        ("住房公积金可以提取吗", None),  # out of scope but answered: a false answer
    ]
    r = evaluate(entries, queries, Thresholds())
    assert set(r) == {
        "n",
        "top1",
        "top3",
        "answer_right",
        "clarify_right",
        "oos_reject",
        "false_answer",
        "p50_ms",
        "p99_ms",
    }
    assert r["n"] == 4
    assert r["answer_right"] == 0.5  # one of the two in-scope queries answered with its own FAQ
    assert r["clarify_right"] == 0.0
    assert r["top1"] == 0.5
    assert r["top3"] == 1.0  # with three FAQs every expected one is in the top 3
    assert r["oos_reject"] == 0.5
    assert r["false_answer"] == 0.5
    assert 0 <= r["p50_ms"] <= r["p99_ms"]
