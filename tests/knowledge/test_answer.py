"""KnowledgeBase: the one decision shared by `policybot ask` and the conversation, and how the index
follows changes made by other processes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from knowledge.answer import KnowledgeBase
from knowledge.db import make_engine, make_sessionmaker
from knowledge.demo import load_demo
from knowledge.faqs import FaqStore
from knowledge.policies import PolicyStore


@pytest.fixture
def kb(engine: Engine) -> KnowledgeBase:
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    return KnowledgeBase(sessions, refresh_seconds=0.0)


def test_answer_with_source(kb: KnowledgeBase) -> None:
    r = kb.ask("依申请公开多长时间答复")
    assert r.decision == "answer" and r.faq_id == "demo-001"
    assert r.answer and "20个工作日" in r.answer
    assert r.sources[0].doc_no == "青人社〔2023〕11号" and r.sources[0].article == "二(二)"
    assert r.hits[0].score == pytest.approx(r.score) and 0.0 <= r.score <= 1.0


def test_clarify_passage_none(kb: KnowledgeBase) -> None:
    clarify = kb.ask("知识库")
    assert clarify.decision == "clarify" and 2 <= len(clarify.hits) <= 3
    passage = kb.ask("碳达峰")
    assert passage.decision == "passage" and passage.passages
    assert "静安区" in passage.passages[0].title and passage.sources[0].article
    assert kb.ask("明天早上六点叫我起床").decision in ("none", "passage")
    assert kb.ask("").decision == "none"


def test_repealed_source_policy_is_never_answered(kb: KnowledgeBase) -> None:
    kb.policies.set_status("qingpu-rsj-2023", "废止", by="admin")
    r = kb.ask("依申请公开多长时间答复")
    assert r.faq_id != "demo-001"
    assert any(f.startswith("demo-001") and "废止" in f for f in r.flags)
    assert all(p.policy_id != "qingpu-rsj-2023" for p in r.passages)


def test_expired_faq_is_flagged(kb: KnowledgeBase) -> None:
    kb.faqs.edit("demo-001", by="admin", valid_to=dt.date(2024, 12, 31))
    r = kb.ask("依申请公开多长时间答复", today=dt.date(2025, 1, 2))
    assert r.faq_id != "demo-001" and any("已超过有效期" in f for f in r.flags)


def test_another_process_change_is_seen(kb: KnowledgeBase, db_url: str) -> None:
    kb.ask("你好")  # index built
    other = FaqStore(make_sessionmaker(make_engine(db_url)))  # a second engine, as another worker
    other.add(
        by="staff",
        question="新生儿医保怎么办理",
        answer="出生后三个月内到街道社区事务受理服务中心办理。",
        similar=("宝宝医保怎么参保", "婴儿怎么办医保"),
    )
    r = kb.ask("宝宝医保怎么参保")
    assert r.decision == "answer" and r.answer and "三个月" in r.answer
    other.retire(r.faq_id or "", by="staff")
    assert kb.ask("宝宝医保怎么参保").faq_id != r.faq_id


def test_synonym_change_rebuilds(kb: KnowledgeBase) -> None:
    kb.faqs.add(by="staff", question="灵活就业人员怎么缴纳社会保险", answer="可在网上办理。")
    kb.faqs.add_synonyms(["社会保险", "社保"], by="admin")
    assert kb.ask("灵活就业怎么交社保").decision == "answer"


def test_unit_follows_what_was_shown(kb: KnowledgeBase) -> None:
    passage = kb.ask("碳达峰")
    assert passage.unit == passage.passages[0].issuer == "上海市静安区人民政府办公室"
    assert kb.ask("依申请公开多长时间答复").unit == "青浦区人力资源和社会保障局"
