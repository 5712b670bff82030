"""Learned phrasings (knowledge/suggestions.py) on the demo knowledge base, on SQLite and
PostgreSQL: each source from query-log rows as the conversation writes them, deduplication and
counting, idempotent mining, approval as a new FAQ version through the conflict check, rejection,
and the export carrying approved phrasings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from knowledge.answer import KnowledgeBase
from knowledge.db import make_sessionmaker
from knowledge.demo import load_demo
from knowledge.suggestions import SuggestionStore, clean_candidate
from knowledge.usage import QueryLogStore


@pytest.fixture
def kb(engine: Engine) -> KnowledgeBase:
    kb = KnowledgeBase(make_sessionmaker(engine), refresh_seconds=0.0)
    load_demo(kb.faqs, kb.policies)
    return kb


def conversation(log: QueryLogStore, sid: str, *rows: dict[str, object]) -> list[int]:
    """Query-log rows of one conversation, as the dialogue writes them."""
    return [log.record(channel="web", user_ref="u-" + sid, session_id=sid, **row) for row in rows]  # type: ignore[arg-type]


def test_clarify_choices_by_number_and_by_tap(kb: KnowledgeBase) -> None:
    log, store = QueryLogStore(kb.sessions), SuggestionStore(kb)
    # by number: the choice is logged without a score, with the original question
    conversation(
        log,
        "s1",
        dict(text="毕业生帮扶", outcome="clarify", score=0.49),
        dict(text="毕业生帮扶", outcome="answer", score=None, faq_id="demo-003"),
    )
    # by tapping the suggestion: the FAQ's own question is asked and matches fully
    conversation(
        log,
        "s2",
        dict(text="毕业生帮扶", outcome="clarify", score=0.49),
        dict(
            text="高校毕业生、农民工、退役军人的就业帮扶政策会公开发布吗",
            outcome="answer",
            score=1.0,
            faq_id="demo-003",
        ),
    )
    # not a choice: a fresh question answered after a clarify
    conversation(
        log,
        "s3",
        dict(text="毕业生帮扶", outcome="clarify", score=0.49),
        dict(text="依申请公开多久答复", outcome="answer", score=1.0, faq_id="demo-001"),
    )
    assert store.mine() == 2
    [s] = store.list()
    assert (s.faq_id, s.text, s.count, s.sources) == ("demo-003", "毕业生帮扶", 2, {"clarify": 2})
    assert s.unit == kb.faqs.require("demo-003").unit
    assert store.mine() == 0  # mined once: nothing counts twice
    assert store.list()[0].count == 2


def test_rated_useful_only_when_the_answer_was_narrow(kb: KnowledgeBase) -> None:
    log, store = QueryLogStore(kb.sessions), SuggestionStore(kb)
    narrow, clear, own = conversation(
        log,
        "s1",
        dict(text="公文公开", outcome="answer", score=0.646, faq_id="demo-066"),  # lead 0.2 or less
        dict(text="信息公开多久答复", outcome="answer", score=0.695, faq_id="demo-001"),  # lead 0.34
        dict(text="依申请公开多久答复", outcome="answer", score=1.0, faq_id="demo-001"),  # its own text
    )
    for log_id in (narrow, clear, own):
        assert log.rate(log_id, "useful")
    unrated = conversation(log, "s2", dict(text="公文公开", outcome="answer", score=0.646, faq_id="demo-066"))
    assert unrated
    assert store.mine() == 1
    [s] = store.list()
    assert (s.faq_id, s.text, s.sources) == ("demo-066", "公文公开", {"rated": 1})


def test_offer_dedups_by_normalised_text_and_refuses_personal_data(kb: KnowledgeBase) -> None:
    store = SuggestionStore(kb)
    a = store.offer("demo-003", "毕业生帮扶？", source="ticket", ref="ticket:LY1:demo-003")
    b = store.offer("demo-003", "毕业生 帮扶", source="clarify", ref="log:99")
    assert a is not None and a == b
    assert (
        store.offer("demo-003", "毕业生帮扶", source="ticket", ref="ticket:LY1:demo-003") is None
    )  # same ticket
    assert store.offer("demo-003", "我的电话138****5678毕业生帮扶", source="clarify", ref="log:100") is None
    assert store.offer("demo-003", "好", source="clarify", ref="log:101") is None  # too short
    assert (
        store.offer("demo-001", "依申请公开多久答复", source="clarify", ref="log:102") is None
    )  # already there
    assert store.offer("nope", "毕业生帮扶", source="clarify", ref="log:103") is None
    [s] = store.list()
    assert s.count == 2 and s.sources == {"ticket": 1, "clarify": 1}
    assert clean_candidate("  公文  公开。 ") == "公文 公开"


def test_approve_adds_a_version_and_export_has_it(kb: KnowledgeBase, tmp_path: Path) -> None:
    store = SuggestionStore(kb)
    sid = store.offer("demo-066", "公文公开", source="rated", ref="rated:1")
    other = store.offer("demo-003", "毕业生帮扶", source="clarify", ref="log:2")
    assert sid and other
    before = kb.ask("公文公开")
    result = store.approve([sid], by="alice")
    assert result.approved == [sid] and not result.refused
    rec = kb.faqs.require("demo-066")
    assert "公文公开" in rec.similar
    last = kb.faqs.history("demo-066")[-1]
    assert last.by == "alice" and last.action == "edit" and f"#{sid}" in last.note
    assert kb.ask("公文公开").score >= before.score and kb.ask("公文公开").faq_id == "demo-066"
    assert [s.id for s in store.list(status="approved")] == [sid]
    assert store.reject([other], by="rita") == [other] and store.list() == []
    assert store.list(status="rejected")[0].decided_by == "rita"
    out = tmp_path / "kb.jsonl"
    kb.faqs.export_file(out, fmt="jsonl")
    rows = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert "公文公开" in rows["demo-066"]["similar"]


def test_a_conflicting_candidate_is_shown_and_stays_pending(kb: KnowledgeBase) -> None:
    store = SuggestionStore(kb)
    # staff answered a ticket about 依申请公开 with demo-002 by mistake: the wording belongs to demo-001
    sid = store.offer("demo-002", "依申请公开多长时间答复", source="ticket", ref="ticket:LY2:demo-002")
    assert sid
    [shown] = store.list(with_conflicts=True)
    assert shown.conflicts and shown.conflicts[0].owner_id == "demo-001"
    result = store.approve([sid], by="alice")
    assert result.approved == [] and "demo-001" in result.refused[sid]
    assert store.list()[0].status == "pending"
    assert "依申请公开多长时间答复" not in kb.faqs.require("demo-002").similar
    assert kb.ask("依申请公开多长时间答复").faq_id == "demo-001"


def test_mining_follows_the_log_with_a_rating_window(kb: KnowledgeBase) -> None:
    log, store = QueryLogStore(kb.sessions), SuggestionStore(kb)
    old = dt.datetime(2026, 1, 5, 9, 0)
    [answer] = conversation(
        log, "s1", dict(text="公文公开", outcome="answer", score=0.646, faq_id="demo-066", at=old)
    )
    assert store.mine() == 0  # not rated (yet): the cursor passes it, it is old
    log.rate(answer, "useful")
    assert store.mine() == 0  # rated after the window: not counted
    [late] = conversation(log, "s2", dict(text="公文公开", outcome="answer", score=0.646, faq_id="demo-066"))
    assert store.mine() == 0
    log.rate(late, "useful")  # a rating within the window still counts
    assert store.mine() == 1
