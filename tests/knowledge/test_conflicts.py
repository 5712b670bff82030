"""The publish guard (knowledge/faqs/conflicts.py) on the demo knowledge base, on SQLite and
PostgreSQL: a change that would take existing phrasings from their FAQ is refused with the list, on
every write path of the store (add, edit, publish, restore, import, synonyms); an admin's
confirmation writes it and records the conflicts in the FAQ's history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from knowledge.answer import KnowledgeBase
from knowledge.db import make_sessionmaker
from knowledge.demo import load_demo
from knowledge.faqs.conflicts import PhrasingConflicts

# The corrupting session of issue 13: every message of one widget session as phrasings of a park FAQ.
SESSION = ["依申请公开多长时间答复", "知识库", "今天天气怎么样", "公园里的健身器材坏了没人修"]
PARK = "公园健身器材损坏报修"


@pytest.fixture
def kb(engine: Engine) -> KnowledgeBase:
    kb = KnowledgeBase(make_sessionmaker(engine), refresh_seconds=0.0)
    load_demo(kb.faqs, kb.policies)
    return kb


def own_answers(kb: KnowledgeBase) -> dict[str, str | None]:
    """Each demo FAQ's standard question -> the FAQ that answers it now."""
    kb.refresh(force=True)
    return {e.question: kb.ask(e.question).faq_id for e in kb.faqs.index_entries()}


def test_adding_a_session_as_phrasings_is_refused_and_lists_the_phrasing(kb: KnowledgeBase) -> None:
    before = own_answers(kb)
    with pytest.raises(PhrasingConflicts) as caught:
        kb.faqs.add(by="alice", question=PARK, answer="请拨打园林热线。", similar=SESSION)
    found = caught.value.conflicts
    assert any(c.owner_id == "demo-001" for c in found)
    assert "demo-001" in caught.value.user_message and "依申请公开" in caught.value.user_message
    assert kb.faqs.count(text=PARK) == 0  # nothing written
    # the park FAQ with its own wording alone is fine, and the knowledge base answers as before
    park = kb.faqs.add(by="alice", question=PARK, answer="请拨打园林热线。", similar=["公园器材坏了找谁修"])
    after = own_answers(kb)
    assert {q: after[q] for q in before} == before and after[PARK] == park.id
    assert kb.ask("依申请公开多长时间答复").faq_id == "demo-001"
    assert kb.ask("公园健身器材坏了找谁报修").faq_id == park.id


def test_edit_publish_and_confirmed_override(kb: KnowledgeBase) -> None:
    draft = kb.faqs.add(by="rita", question=PARK, answer="请拨打园林热线。", status="draft", similar=SESSION)
    # a draft is not in the index: saving it is fine; publishing it is refused
    with pytest.raises(PhrasingConflicts):
        kb.faqs.publish(draft.id, by="alice")
    assert kb.faqs.require(draft.id).status == "draft"
    # editing a published FAQ to take another's wording is refused too
    with pytest.raises(PhrasingConflicts):
        kb.faqs.edit("demo-002", by="alice", similar=["依申请公开多长时间答复", "依申请公开多久给答复"])
    assert "依申请公开多长时间答复" not in kb.faqs.require("demo-002").similar
    # the admin's explicit confirmation writes it, and the history says which phrasings it took
    rec = kb.faqs.publish(draft.id, by="admin", confirm_conflicts=True)
    assert rec.status == "published"
    last = kb.faqs.history(draft.id)[-1]
    assert last.by == "admin" and last.note.startswith("确认冲突后发布") and "demo-001" in last.note


def test_restore_and_retire_are_checked(kb: KnowledgeBase) -> None:
    rec = kb.faqs.add(by="alice", question=PARK, answer="请拨打园林热线。", similar=["公园器材坏了找谁修"])
    kb.faqs.retire(rec.id, by="alice", reason="改版")
    # a retired FAQ's content changed while offline, then restored to the index: checked again
    kb.faqs.edit(rec.id, by="admin", similar=SESSION)
    with pytest.raises(PhrasingConflicts):
        kb.faqs.edit(rec.id, by="alice", status="published")
    assert kb.faqs.require(rec.id).status == "retired"


def test_import_dry_run_lists_and_import_refuses(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    path.write_text(
        json.dumps(
            {"id": "park-1", "question": PARK, "similar": SESSION, "answer": "请拨打园林热线。"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    report = kb.faqs.import_file(path, dry_run=True, by="alice")
    assert report.created == 1 and any("demo-001" in c for c in report.conflicts)
    assert "已有问法将被错误答复" in report.summary()
    with pytest.raises(PhrasingConflicts):
        kb.faqs.import_file(path, by="alice")
    assert kb.faqs.get("park-1") is None
    done = kb.faqs.import_file(path, by="admin", confirm_conflicts=True)
    assert done.created == 1 and kb.faqs.history("park-1")[-1].note.startswith("确认冲突")
    # re-importing the demo itself changes nothing and passes
    assert load_demo(kb.faqs, kb.policies).faqs.updated == 0


def test_synonym_change_that_merges_two_faqs_is_refused(kb: KnowledgeBase) -> None:
    before = own_answers(kb)
    # Rewriting 主动公开 as 依申请公开 makes the two kinds of disclosure one word for the matcher.
    with pytest.raises(PhrasingConflicts) as caught:
        kb.faqs.add_synonyms(["依申请公开", "主动公开"], by="alice")
    assert caught.value.conflicts
    assert kb.faqs.synonyms() == []
    assert own_answers(kb) == before
    # a harmless set passes
    kb.faqs.add_synonyms(["政府信息", "政务信息"], by="alice")
    assert kb.faqs.synonyms() == [["政府信息", "政务信息"]]


def test_check_change_previews_without_writing(kb: KnowledgeBase) -> None:
    rec = kb.faqs.require("demo-002")
    found = kb.faqs.check_change(rec.id, similar=[*rec.similar, "依申请公开多长时间答复"])
    assert found and all(c.now_id == rec.id for c in found)
    assert kb.faqs.require(rec.id).seq == rec.seq
