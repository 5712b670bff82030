"""The demo knowledge base: the hand-written FAQ file is complete and consistent with the policy
documents it cites, its phrasings do not collide across FAQs, and `load_demo` is idempotent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.demo import DEMO_DIR, demo_policy_specs, load_demo
from knowledge.errors import InvalidInput
from knowledge.models import current_version
from knowledge.policies import PolicyStore, split_passages

FAQS: list[dict[str, Any]] = [
    json.loads(line)
    for line in (DEMO_DIR / "faqs.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
SPECS = {s["id"]: s for s in demo_policy_specs()}
REQUIRED_TOPICS = [
    "依申请公开",
    "政策留言板",
    "知识库",
    "常见问题解答清单",
    "个人隐私",
    "政策解读",
    "12333",
    "12345",
    "主动公开",
    "订阅",
    "推送",
    "留言选登",
    "办理时限",
    "废止",
    "失效",
]


def _labels(policy_id: str) -> set[str]:
    text = (DEMO_DIR / "policies" / SPECS[policy_id]["file"]).read_text(encoding="utf-8")
    return {p.label for p in split_passages(text)}


def test_policy_index_covers_five_documents() -> None:
    assert len(SPECS) == 5
    for spec in SPECS.values():
        assert spec["title"] and spec["issuer"] and spec["status"] == "有效"
        assert (DEMO_DIR / "policies" / spec["file"]).is_file()
    assert SPECS["qingpu-rsj-2023"]["doc_no"] == "青人社〔2023〕11号"


def test_faq_file_shape() -> None:
    assert len(FAQS) >= 45
    ids = [f["id"] for f in FAQS]
    assert len(set(ids)) == len(ids)
    for f in FAQS:
        assert set(f) >= {
            "id",
            "question",
            "similar",
            "answer",
            "tags",
            "unit",
            "source_policy",
            "source_article",
            "status",
        }, f["id"]
        assert f["status"] == "published"
        assert f["question"].strip() and f["answer"].strip() and f["tags"], f["id"]
        assert len(f["similar"]) >= 3, f["id"]
        phrasings = [f["question"], *f["similar"]]
        assert len(set(phrasings)) == len(phrasings), f["id"]
        assert f["source_policy"] in SPECS, f["id"]
        assert f["unit"] == SPECS[f["source_policy"]]["issuer"], f["id"]
        assert SPECS[f["source_policy"]]["title"] in f["answer"], f["id"]  # the answer names its document
        assert len(f["answer"]) <= 300, f["id"]


def test_source_articles_exist_in_their_policy() -> None:
    labels = {pid: _labels(pid) for pid in SPECS}
    for f in FAQS:
        assert f["source_article"] in labels[f["source_policy"]], (f["id"], f["source_article"])


def test_every_document_and_topic_is_covered() -> None:
    per_policy = Counter(f["source_policy"] for f in FAQS)
    assert set(per_policy) == set(SPECS)
    assert min(per_policy.values()) >= 5
    corpus = "".join(f["question"] + "".join(f["similar"]) + f["answer"] for f in FAQS)
    missing = [t for t in REQUIRED_TOPICS if t not in corpus]
    assert not missing


def test_required_example_quotes_the_document() -> None:
    faq = next(f for f in FAQS if f["question"] == "依申请公开多久答复")
    assert "20个工作日" in faq["answer"]
    assert (faq["source_policy"], faq["source_article"]) == ("qingpu-rsj-2023", "二(二)")
    text = (DEMO_DIR / "policies" / "000_c2b712b40e81b70c.txt").read_text(encoding="utf-8")
    assert (
        "在收到申请后的20个工作日内完成答复" in text and "在收到申请后的20个工作日内完成答复" in faq["answer"]
    )


def test_no_phrasing_is_shared_between_faqs() -> None:
    owner: dict[str, str] = {}
    for f in FAQS:
        for p in [f["question"], *f["similar"]]:
            key = "".join(ch for ch in p if ch.isalnum())
            assert owner.setdefault(key, f["id"]) == f["id"], (p, owner[key], f["id"])


def test_phrasings_are_closest_to_their_own_faq() -> None:
    """Leave one phrasing out and search it (as a citizen's unseen wording): its own FAQ should rank
    first, and the matcher's decision must never be a direct answer with another FAQ."""
    from knowledge.matcher import IndexEntry, Matcher, Thresholds

    matcher = Matcher(mode="faq")
    entries = {
        f["id"]: IndexEntry(f["id"], f["question"], tuple(f["similar"]), tuple(f["tags"])) for f in FAQS
    }
    matcher.build(entries.values())
    thresholds = Thresholds()
    total = top1 = top3 = 0
    wrong_answers = []
    for f in FAQS:
        phrasings = [f["question"], *f["similar"]]
        for i, p in enumerate(phrasings):
            total += 1
            rest = phrasings[:i] + phrasings[i + 1 :]
            matcher.upsert(IndexEntry(f["id"], rest[0], tuple(rest[1:]), tuple(f["tags"])))
            hits = matcher.search(p, 5)
            ranked = [h.faq_id for h in hits[:3]]
            top1 += bool(ranked) and ranked[0] == f["id"]
            top3 += f["id"] in ranked
            decision = matcher.decide(hits, thresholds)
            if decision.kind == "answer" and decision.hits[0].faq_id != f["id"]:
                wrong_answers.append((f["id"], p, decision.hits[0].faq_id))
            matcher.upsert(entries[f["id"]])
    assert not wrong_answers
    assert top1 / total >= 0.95, top1 / total
    assert top3 / total >= 0.98, top3 / total


def test_load_demo_is_idempotent(engine: Engine) -> None:
    from knowledge.faqs import FaqStore

    sessions = make_sessionmaker(engine)
    faqs, policies = FaqStore(sessions), PolicyStore(sessions, refresh_seconds=0.0)
    first = load_demo(faqs, policies)
    assert first.policies_changed == 5 and first.faqs.created == len(FAQS)
    assert "政策文件 5 份" in first.summary()
    with sessions() as s:
        version = current_version(s)
    snapshot = [(r.id, r.question, r.answer, r.seq) for r in faqs.list(limit=1000)]
    passages = {p.id: [x.id for x in policies.passages(p.id)] for p in policies.list()}

    second = load_demo(faqs, policies)
    assert second.policies_changed == 0 and second.faqs.created == 0 and second.faqs.updated == 0
    with sessions() as s:
        assert current_version(s) == version
    assert [(r.id, r.question, r.answer, r.seq) for r in faqs.list(limit=1000)] == snapshot
    assert {p.id: [x.id for x in policies.passages(p.id)] for p in policies.list()} == passages

    rec = faqs.get("demo-001")
    assert rec is not None and rec.unit == "青浦区人力资源和社会保障局"
    pol = policies.find(rec.source_policy or "")
    assert pol is not None and pol.doc_no == "青人社〔2023〕11号"
    assert (
        pol.citation(rec.source_article)
        == "《2023年青浦区人力资源和社会保障局政务公开工作要点》（青人社〔2023〕11号）二(二)"
    )
    hits = policies.search("依申请公开多久答复", k=3)
    assert ("qingpu-rsj-2023", "二(二)") in {(h.policy_id, h.label) for h in hits}


def test_load_demo_rejects_a_broken_directory(tmp_path: Path, sqlite_engine: Engine) -> None:
    from knowledge.faqs import FaqStore

    sessions = make_sessionmaker(sqlite_engine)
    (tmp_path / "policies.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_demo(FaqStore(sessions), PolicyStore(sessions), directory=tmp_path)
    (tmp_path / "policies.json").write_text('[{"id": "x", "file": "missing.txt"}]', encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_demo(FaqStore(sessions), PolicyStore(sessions), directory=tmp_path)
    assert PolicyStore(sessions).list() == []
