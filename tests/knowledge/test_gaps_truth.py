"""The weekly report tells the truth (issue 13): questions answered directly without a negative
signal are not topics, one intent asked twelve ways is one topic with a readable label, and each
topic says how many distinct citizens asked and which existing FAQ came closest."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.demo import DEMO_DIR
from knowledge.evaluation import load_faq_jsonl
from knowledge.gaps import NearestFaq, analyse_store, parse_week, render_html
from knowledge.matcher import Matcher
from knowledge.text import TextProcessor
from knowledge.usage import QueryLogStore

WEEK = parse_week("2026-W47")
T0 = WEEK.start + dt.timedelta(days=1, hours=2)
MIN = dt.timedelta(minutes=1)

# Twelve ways citizens ask one thing the knowledge base does not answer.
INTENT = [
    "退休人员异地就医备案怎么办理",
    "异地就医备案在哪里办",
    "请问异地就医备案流程是什么",
    "异地就医备案需要什么材料？",
    "异地就医备案网上能办吗",
    "怎么办理异地就医备案手续",
    "退休了在外地住，异地就医要先备案吗",
    "异地就医备案多久能办好",
    "你好，异地就医备案怎么弄",
    "长期住外地的退休人员怎么做异地就医备案",
    "异地就医备案可以手机上办吗",
    "异地就医备案要本人去吗",
]
# Questions the store answered (some with a modest score), each followed by nothing negative.
ANSWERED = [
    ("依申请公开多长时间答复", "demo-001", 0.62),
    ("依申请公开多久答复", "demo-001", 0.97),
    ("政策留言板怎么用", "demo-010", 0.58),
    ("怎么订阅政策推送", "demo-020", 0.71),
]


def _plant(store: QueryLogStore) -> None:
    n = 0
    for i, q in enumerate(INTENT):
        store.record(
            channel="web",
            user_ref=f"citizen{i}",
            session_id=f"s-int-{i}",
            text=q,
            outcome=("none", "passage", "handoff")[i % 3],
            score=0.3,
            at=T0 + i * 7 * MIN,
        )
    # one citizen asks twice: 13 questions, 12 distinct askers
    store.record(
        channel="wechat",
        user_ref="citizen0",
        session_id="s-int-again",
        text=INTENT[1],
        outcome="none",
        score=0.3,
        at=T0 + 3 * dt.timedelta(hours=5),
    )
    for rep in range(6):
        for j, (q, faq, score) in enumerate(ANSWERED):
            n += 1
            sid = f"s-ans-{rep}-{j}"
            at = T0 + dt.timedelta(hours=rep + 1, minutes=10 * j)
            store.record(
                channel="web",
                user_ref=f"asker{n}",
                session_id=sid,
                text=q,
                outcome="answer",
                score=score,
                faq_id=faq,
                at=at,
            )
            if rep % 3 == 0:  # then something else, answered too: not a rephrasing
                store.record(
                    channel="web",
                    user_ref=f"asker{n}",
                    session_id=sid,
                    text="知识库是什么",
                    outcome="answer",
                    score=0.9,
                    faq_id="demo-030",
                    at=at + MIN,
                )
            elif rep % 3 == 1:  # the same intent reworded, landing on the same FAQ: answered
                store.record(
                    channel="web",
                    user_ref=f"asker{n}",
                    session_id=sid,
                    text=q + "呀",
                    outcome="answer",
                    score=0.9,
                    faq_id=faq,
                    at=at + MIN,
                )


def test_answered_questions_are_no_topic_and_one_intent_is_one_topic(engine: Engine) -> None:
    store = QueryLogStore(make_sessionmaker(engine))
    _plant(store)
    nearest = NearestFaq("demo-044", "医保关系转移怎么办理", 0.41)
    text = TextProcessor()
    kb_matcher = Matcher(text)  # the knowledge base's matcher, as the service hands it in
    kb_matcher.build(load_faq_jsonl(DEMO_DIR / "faqs.jsonl"))
    a = analyse_store(store, WEEK, text=text, locate_faq=lambda q: nearest, matcher=kb_matcher)
    answered_texts = {q for q, _, _ in ANSWERED} | {"知识库是什么"} | {q + "呀" for q, _, _ in ANSWERED}
    for t in a.topics:
        assert not {s.text for s in t.samples} & answered_texts, t
    intent_topics = [t for t in a.topics if any(s.text in INTENT for s in t.samples)]
    assert len(intent_topics) == 1
    topic = intent_topics[0]
    assert topic.count == 13 and topic.askers == 12
    assert {s.text for s in topic.samples} == set(INTENT)
    # a readable question of the topic, not a list of fragments
    assert "、" not in topic.label and topic.label in {q.replace("请问", "").rstrip("？") for q in INTENT}
    assert topic.nearest == nearest
    html = render_html(a.report(None))
    assert topic.label in html and "医保关系转移怎么办理" in html and "提问人数" in html


def _kb_matcher(text: TextProcessor) -> Matcher:
    m = Matcher(text)
    m.build(load_faq_jsonl(DEMO_DIR / "faqs.jsonl"))
    return m


def test_same_action_different_subject_stay_apart_with_the_store_matcher() -> None:
    from knowledge.gaps import analyse
    from knowledge.usage import LogRow

    hows = ["怎么办理", "如何办理", "办理需要什么材料", "办理流程是什么", "在哪里办理"]
    rows = [
        LogRow(
            i, T0 + i * MIN, "web", f"u{i}", None, subject + hows[i % 5], "none", 0.2, None, None, None, None
        )
        for i, subject in enumerate(["新生儿医保"] * 10 + ["医保门诊报销"] * 10)
    ]
    text = TextProcessor()
    a = analyse(rows, WEEK, text=text, matcher=_kb_matcher(text))
    assert sorted((t.count, "新生儿" in t.label) for t in a.topics) == [(10, False), (10, True)]


def test_rephrase_landing_elsewhere_needs_the_same_intent() -> None:
    from knowledge.gaps import GapParams, select_unanswered
    from knowledge.usage import LogRow

    def row(i: int, text: str, outcome: str, faq: str | None, session: str) -> LogRow:
        return LogRow(i, T0 + i * MIN, "web", "u", session, text, outcome, 0.5, faq, None, None, None)

    text = TextProcessor()
    rows = [
        row(1, "依申请公开多长时间答复", "answer", "demo-001", "a"),
        row(2, "依申请公开要等多久才答复", "none", None, "a"),  # same intent, not helped: negative
        row(3, "依申请公开多长时间答复", "answer", "demo-001", "b"),
        row(4, "今天天气怎么样", "none", None, "b"),  # something else: the answer stands
    ]
    got = {u.log_id: u.reason for u in select_unanswered(rows, GapParams(), text, _kb_matcher(text))}
    assert got == {1: "rephrased", 2: "none", 4: "none"}
