"""knowledge.gaps: which questions count as unanswered, topic clustering of a week with planted
gaps (found, counted within 10%, routed, ordered), trend, tickets and drafts, keyword routes,
week windows, determinism and masking."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput, NotFound
from knowledge.gaps import (
    UNASSIGNED,
    GapParams,
    TicketSummary,
    analyse,
    analyse_store,
    delete_route,
    last_seven_days,
    list_routes,
    parse_week,
    scrub,
    select_unanswered,
    set_route,
)
from knowledge.text import TextProcessor
from knowledge.usage import LogRow, QueryLogStore

WEEK = parse_week("2026-W47")  # Mon 2026-11-16 .. Sun 2026-11-22, China time
HR = "青浦区人力资源和社会保障局"
MED = "青浦区医疗保障局"

PREFIXES = ["", "", "请问", "你好，", "我想问一下", "麻烦问下", "您好，请问"]
SUFFIXES = ["", "？", "?", "。", "呢", "，谢谢"]
A_BODIES = [
    "灵活就业人员社保补贴怎么申请",
    "灵活就业社保补贴如何申领",
    "灵活就业人员的社保补贴在哪里申请",
    "灵活就业社保补贴申请需要什么材料",
    "怎么申请灵活就业社保补贴",
    "灵活就业人员社保补贴申请条件是什么",
    "灵活就业人员申请社保补贴的流程",
]
B_BODIES = [
    "新生儿医保怎么办理",
    "新生儿医保在哪里办",
    "宝宝出生后医保如何参保",
    "新生儿参加医保需要什么材料",
    "婴儿医保怎么参保",
]
NOISE = [
    "社保卡丢了怎么补办",
    "公积金可以提取吗",
    "退休人员丧葬费标准是多少",
    "残疾人补贴怎么领",
    "廉租房申请条件",
    "驾驶证到期换证",
    "户口迁移需要什么手续",
    "结婚登记要带什么",
    "营业执照年报怎么报",
    "养老金什么时候涨",
    "个税专项附加扣除",
    "出租车投诉电话",
    "垃圾分类投放时间",
    "小区停车收费标准",
    "人才公寓租金多少",
    "高龄津贴发放时间",
    "失业登记在哪里办",
    "公租房可以养宠物吗",
    "老旧小区加装电梯补贴",
    "献血证有什么用",
    "图书馆周一开门吗",
    "游泳馆开放时间",
    "防汛物资在哪里领",
    "外卖食品安全投诉",
    "文物保护单位名单",
]
ANSWERED = ["依申请公开多久答复", "政府信息公开怎么申请", "社保缴费基数是多少", "医保报销比例"]


def _text() -> TextProcessor:
    # The store's synonym sets reach the report: 宝宝/婴儿 are the same as 新生儿.
    return TextProcessor(synonyms=[["新生儿", "宝宝", "婴儿"]])


def _variant(rnd: random.Random, bodies: list[str]) -> str:
    return rnd.choice(PREFIXES) + rnd.choice(bodies) + rnd.choice(SUFFIXES)


def _at(rnd: random.Random, start: dt.datetime = WEEK.start) -> dt.datetime:
    return start + dt.timedelta(seconds=rnd.randrange(7 * 86400 - 3600))


def _plant(engine: Engine, seed: int = 3) -> QueryLogStore:
    """120 variants of gap A (unit logged on about half), 40 of gap B (no unit: keyword route),
    one-off noise, answered questions, and a few rows of the previous weeks for the trend."""
    rnd = random.Random(seed)
    sessions = make_sessionmaker(engine)
    store = QueryLogStore(sessions)
    rows: list[dict[str, object]] = []
    for i in range(120):
        outcome = ("none", "passage", "handoff", "answer")[i % 4]
        rows.append(
            dict(
                text=_variant(rnd, A_BODIES),
                outcome=outcome,
                unit=HR if i % 2 else None,
                score=0.3 if outcome != "answer" else 0.95,
                useless=outcome == "answer",
            )
        )
    for _ in range(40):
        rows.append(dict(text=_variant(rnd, B_BODIES), outcome="none", unit=None, score=0.2, useless=False))
    for q in NOISE:
        rows.append(
            dict(text=q, outcome=rnd.choice(("none", "passage")), unit=None, score=0.2, useless=False)
        )
    for _ in range(150):
        rows.append(dict(text=rnd.choice(ANSWERED), outcome="answer", unit=HR, score=0.97, useless=False))
    rnd.shuffle(rows)
    with sessions.begin() as s:
        ids: list[tuple[int, bool]] = []
        for n, r in enumerate(rows):
            log_id = store.record(
                channel=("web", "wechat")[n % 2],
                user_ref=f"u{n % 97}",
                session_id=f"s{n}",
                text=str(r["text"]),
                outcome=str(r["outcome"]),
                score=float(r["score"]),  # type: ignore[arg-type]
                unit=r["unit"],
                at=_at(rnd),
                session=s,  # type: ignore[arg-type]
            )
            ids.append((log_id, bool(r["useless"])))
        # Earlier weeks: gap A growing (1, 2, 3, 4 per week before), B absent.
        for w in range(4):
            for _ in range(w + 1):
                store.record(
                    channel="web",
                    user_ref="old",
                    text=_variant(rnd, A_BODIES),
                    outcome="none",
                    at=_at(rnd, WEEK.start - dt.timedelta(weeks=4 - w)),
                    session=s,
                )
    for log_id, useless in ids:
        if useless:
            assert store.rate(log_id, "useless")
    return store


def test_planted_topics_found_counted_routed_and_ordered(engine: Engine) -> None:
    store = _plant(engine)
    sessions = make_sessionmaker(engine)
    set_route(sessions, keyword="新生儿", unit=MED, by="admin")
    a = analyse_store(store, WEEK, sessions=sessions, text=_text())

    assert len(a.topics) >= 2
    first, second = a.topics[0], a.topics[1]
    assert "灵活就业" in first.label and "补贴" in first.label
    assert "新生儿" in second.label
    assert abs(first.count - 120) <= 12
    assert abs(second.count - 40) <= 4
    assert [t.count for t in a.topics] == sorted((t.count for t in a.topics), reverse=True)
    # Routed: A by the unit logged with its questions, B by the admin's keyword route.
    assert (first.unit, first.route) == (HR, "log")
    assert (second.unit, second.route) == (MED, "route")
    # Noise stays out of the planted topics and does not form big topics of its own.
    assert all(t.count <= 3 for t in a.topics[2:])
    for t in a.topics[:2]:
        assert not any(q in s.text for s in t.samples for q in NOISE)
    # Every reason of A is kept: none / passage / handoff / rated useless.
    reasons = dict(first.reasons)
    assert set(reasons) == {"none", "passage", "handoff", "useless"}
    assert sum(reasons.values()) == first.count
    assert first.trend == (1, 2, 3, 4)
    assert second.trend == (0, 0, 0, 0)
    assert first.askers <= first.count
    assert {c for c, _ in first.channels} == {"web", "wechat"}
    # Answered questions are not unanswered; totals add up.
    overview = a.report(None)
    assert overview.total_questions == 120 + 40 + len(NOISE) + 150
    assert overview.unanswered == 120 + 40 + len(NOISE)
    assert sum(u for _, _, u in overview.daily) == overview.unanswered
    hr = a.report(HR)
    assert hr.topics[0].key == first.key and all(t.unit == HR for t in hr.topics)


def test_deterministic_for_shuffled_input() -> None:
    rnd = random.Random(5)
    rows = [_row(i, _variant(rnd, A_BODIES if i % 3 else B_BODIES), "none", at=_at(rnd)) for i in range(200)]
    rows += [_row(1000 + i, q, "none", at=_at(rnd)) for i, q in enumerate(NOISE)]
    a1 = analyse(rows, WEEK, text=_text())
    shuffled = rows[:]
    random.Random(9).shuffle(shuffled)
    a2 = analyse(shuffled, WEEK, text=_text())
    assert a1 == a2
    assert a1.topics[0].count + a1.topics[1].count == 200


def _row(
    i: int,
    text: str,
    outcome: str,
    *,
    at: dt.datetime | None = None,
    session: str | None = None,
    score: float | None = None,
    unit: str | None = None,
    rating: str | None = None,
    ticket: str | None = None,
    user: str | None = None,
    faq: str | None = None,
) -> LogRow:
    return LogRow(
        i,
        at or WEEK.start + dt.timedelta(hours=1, minutes=i),
        "web",
        user or f"u{i}",
        session,
        text,
        outcome,
        score,
        faq,
        unit,
        rating,
        ticket,
    )


def test_what_counts_as_unanswered() -> None:
    t0 = WEEK.start + dt.timedelta(hours=2)
    m = dt.timedelta(minutes=1)
    rows = [
        _row(1, "没有答案的问题", "none", at=t0),
        _row(2, "只给了政策原文", "passage", at=t0),
        _row(3, "转了人工", "answer", at=t0, ticket="LY1"),
        _row(4, "答了但没用", "answer", at=t0, score=0.99, rating="useless", faq="F1"),
        _row(5, "答得好", "answer", at=t0, score=0.99, rating="useful", faq="F1"),
        _row(6, "有用", "command", at=t0),
        # An answer, then the same intent reworded that lands on another FAQ: counts.
        _row(7, "依申请公开多长时间答复", "answer", at=t0, session="a", score=0.6, faq="F1"),
        _row(8, "依申请公开要多久才答复", "answer", at=t0 + 2 * m, session="a", score=0.99, faq="F2"),
        # ... or that ends in a message to staff: counts.
        _row(19, "社保卡丢了怎么补办", "answer", at=t0, session="h", score=0.7, faq="F3"),
        _row(20, "社保卡丢失了如何补办", "handoff", at=t0 + m, session="h", ticket="LY2"),
        # Clarify, then the citizen picks a choice (same text logged again): not a rephrasing.
        _row(9, "低分问题乙", "clarify", at=t0, session="b", score=0.6),
        _row(10, "低分问题乙", "answer", at=t0 + m, session="b", faq="F1"),
        # A low score answer followed by another, unrelated question: answered (no negative signal).
        _row(13, "依申请公开多长时间答复", "answer", at=t0, session="d", score=0.45, faq="F1"),
        _row(14, "今天天气怎么样", "none", at=t0 + m, session="d"),
        # A rephrasing that lands on the same FAQ: answered.
        _row(21, "依申请公开多长时间答复", "answer", at=t0, session="i", score=0.5, faq="F1"),
        _row(22, "依申请公开多久答复", "answer", at=t0 + m, session="i", score=0.99, faq="F1"),
        # Too late, other session, or a command in between that is not a question.
        _row(11, "社保卡丢了怎么补办", "answer", at=t0, session="c", score=0.6, faq="F3"),
        _row(12, "社保卡丢失了如何补办", "none", at=t0 + 30 * m, session="c"),
        _row(15, "社保卡丢了怎么补办", "answer", at=t0, session="e", score=0.6, faq="F3"),
        _row(16, "社保卡丢失了如何补办", "none", at=t0 + m, session="f"),
        _row(17, "低分问题戊", "answer", at=t0, session="g", score=0.6, faq="F1"),
        _row(18, "没用", "command", at=t0 + m, session="g"),
    ]
    got = {u.log_id: u.reason for u in select_unanswered(reversed(rows), GapParams(), _text())}
    assert got == {
        1: "none",
        2: "passage",
        3: "handoff",
        4: "useless",
        7: "rephrased",
        19: "rephrased",
        20: "handoff",
        14: "none",
        12: "none",
        16: "none",
    }
    # The outcome is kept next to the reason.
    assert {u.log_id: u.outcome for u in select_unanswered(rows, GapParams())}[3] == "answer"
    # A tighter window or a stricter sameness drops the rephrasing.
    assert 7 not in {u.log_id for u in select_unanswered(rows, GapParams(rephrase_minutes=1))}
    assert 7 not in {u.log_id for u in select_unanswered(rows, GapParams(same_intent=0.99))}


def test_tickets_link_route_and_give_drafts() -> None:
    rnd = random.Random(2)
    rows = [_row(i, _variant(rnd, A_BODIES), "none", at=_at(rnd)) for i in range(30)]
    rows.append(_row(99, "灵活就业人员社保补贴怎么申请", "handoff", at=_at(rnd), ticket="LY20261117-0001"))
    rows += [_row(200 + i, "公租房续租要什么材料", "none", at=_at(rnd)) for i in range(3)]
    tickets = [
        TicketSummary(
            "LY20261117-0001",
            "灵活就业人员社保补贴怎么申请",
            HR,
            "已答复",
            "请携带身份证到社区事务受理服务中心申请，咨询电话13812345678。",
            WEEK.start + dt.timedelta(days=1),
        ),
        TicketSummary(
            "LY20261118-0002",
            "公租房续租需要准备哪些材料",
            "青浦区住房保障和房屋管理局",
            "办理中",
            None,
            (WEEK.start + dt.timedelta(days=2)).replace(tzinfo=dt.UTC),
        ),
        TicketSummary(
            "LY20250101-0003", "毫不相关的旧留言", "某单位", "已办结", "旧答复", dt.datetime(2025, 1, 1)
        ),
    ]
    a = analyse(rows, WEEK, tickets=tickets, text=_text())
    top = a.topics[0]
    assert [k.no for k in top.tickets] == ["LY20261117-0001"]
    assert top.unit == HR and top.route == "ticket"
    housing = next(t for t in a.topics if "公租房" in t.label)
    assert [k.no for k in housing.tickets] == ["LY20261118-0002"]
    assert housing.unit == "青浦区住房保障和房屋管理局"
    assert len(a.drafts) == 1
    d = a.drafts[0]
    assert d.ticket_no == "LY20261117-0001" and d.question == top.representative and d.unit == HR
    assert "13812345678" not in d.answer and "138****5678" in d.answer


def test_locate_unit_only_for_unrouted_topics() -> None:
    rows = [_row(i, "公积金贷款额度怎么算", "none", unit=HR if i < 3 else None) for i in range(5)]
    rows += [_row(10 + i, "垃圾分类投放时间", "none") for i in range(4)]
    asked: list[str] = []

    def locate(q: str) -> str | None:
        asked.append(q)
        return "青浦区绿化和市容管理局"

    a = analyse(rows, WEEK, text=_text(), locate_unit=locate)
    by_label = {t.representative: t for t in a.topics}
    assert by_label["公积金贷款额度怎么算"].unit == HR
    assert by_label["垃圾分类投放时间"].unit == "青浦区绿化和市容管理局"
    assert by_label["垃圾分类投放时间"].route == "search"
    assert asked == ["垃圾分类投放时间"]
    a2 = analyse(rows, WEEK, text=_text())
    assert {t.representative: t.unit for t in a2.topics}["垃圾分类投放时间"] == UNASSIGNED


def test_small_topics_are_scattered_but_counted() -> None:
    rows = [_row(i, q, "none", unit=HR if i % 2 else None) for i, q in enumerate(NOISE)]
    a = analyse(rows, WEEK, text=_text())
    assert a.topics == ()
    overview = a.report(None)
    assert overview.unanswered == len(NOISE) and overview.scattered == len(NOISE)
    assert set(a.units) == {HR, UNASSIGNED}
    assert a.report(HR).scattered == len([i for i in range(len(NOISE)) if i % 2])
    # Emoji / punctuation only: unanswered, but no topic.
    b = analyse([_row(1, "？？？", "none"), _row(2, "😀😀", "none")], WEEK)
    assert b.report(None).unanswered == 2 and b.topics == ()


def test_samples_and_tickets_are_scrubbed() -> None:
    rows = [
        _row(i, f"我的手机13912345678，身份证110105199003071234，灵活就业社保补贴怎么申请{i % 2}", "none")
        for i in range(4)
    ]
    a = analyse(rows, WEEK, text=_text())
    blob = repr(a)
    assert "13912345678" not in blob and "110105199003071234" not in blob
    assert "139****5678" in a.topics[0].representative


def test_scrub() -> None:
    assert scrub("电话13812345678") == "电话138****5678"
    assert scrub("电话１３８１２３４５６７８") == "电话138****5678"
    assert scrub("+86 138-1234-5678") == "138****5678"
    assert scrub("身份证11010519900307123X号") == "身份证110105********123X号"
    kept = "青人社〔2023〕11号，20个工作日，12345热线，LY20261123-0007，2026年11月23日"
    assert scrub(kept) == kept
    once = scrub("13812345678 110105199003071234")
    assert scrub(once) == once


def test_routes_crud(sqlite_engine: Engine) -> None:
    sessions = make_sessionmaker(sqlite_engine)
    assert list_routes(sessions) == []
    set_route(sessions, keyword=" 新生儿 ", unit=MED, by="admin")
    set_route(sessions, keyword="公积金", unit="住房公积金管理中心", by="admin")
    r = set_route(sessions, keyword="新生儿", unit=HR, by="other")
    assert (r.keyword, r.unit, r.updated_by) == ("新生儿", HR, "other")
    assert [(x.keyword, x.unit) for x in list_routes(sessions)] == [
        ("公积金", "住房公积金管理中心"),
        ("新生儿", HR),
    ]
    delete_route(sessions, keyword="公积金")
    assert [x.keyword for x in list_routes(sessions)] == ["新生儿"]
    with pytest.raises(NotFound):
        delete_route(sessions, keyword="公积金")
    with pytest.raises(InvalidInput):
        set_route(sessions, keyword="  ", unit=HR, by="x")
    with pytest.raises(InvalidInput):
        set_route(sessions, keyword="x", unit="", by="x")
    with pytest.raises(InvalidInput):
        set_route(sessions, keyword="长" * 101, unit=HR, by="x")


def test_route_keyword_beats_logged_unit_and_needs_half_the_topic() -> None:
    from knowledge.gaps import Route

    now = dt.datetime(2026, 1, 1)
    rows = [_row(i, "新生儿医保怎么办理", "none", unit=HR) for i in range(6)]
    routed = analyse(rows, WEEK, routes=[Route("新生儿医保", MED, "a", now)], text=_text())
    assert (routed.topics[0].unit, routed.topics[0].route) == (MED, "route")
    # A keyword in fewer than half of the topic's questions does not route it.
    rows2 = rows + [_row(10 + i, "新生儿医保如何办理", "none", unit=HR) for i in range(8)]
    partial = analyse(rows2, WEEK, routes=[Route("新生儿医保怎么", MED, "a", now)], text=_text())
    assert partial.topics[0].count == 14
    assert (partial.topics[0].unit, partial.topics[0].route) == (HR, "log")


def test_week_windows() -> None:
    p = parse_week("2026-W47")
    assert p.label == "2026-W47"
    assert (p.start_day, p.end_day) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    # Monday 00:00 in China is Sunday 16:00 UTC.
    assert p.start == dt.datetime(2026, 11, 15, 16, 0) and p.end == dt.datetime(2026, 11, 22, 16, 0)
    assert len(p.days) == 7
    assert parse_week("2026w1").label == "2026-W01"
    for bad in ("2026-W54", "2025-W53", "W47", "", "2026-47x"):
        with pytest.raises(InvalidInput):
            parse_week(bad)
    r = last_seven_days(dt.datetime(2026, 11, 23, 4, 0))  # 12:00 in China
    assert r.end - r.start == dt.timedelta(days=7)
    assert r.label == "20261116-20261123" and len(r.days) == 8
    # A question at 23:30 China time on Sunday belongs to that Sunday.
    late = _row(1, "新生儿医保怎么办理", "none", at=dt.datetime(2026, 11, 22, 15, 30))
    a = analyse([late, _row(2, "新生儿医保怎么办理", "none")], p, text=_text())
    assert dict(a.topics[0].days)[dt.date(2026, 11, 22)] == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(InvalidInput):
        GapParams(same_intent=2)
    with pytest.raises(InvalidInput):
        GapParams(min_topic_size=0)
    with pytest.raises(InvalidInput):
        GapParams(similarity=0)


def test_same_action_different_subject_stay_apart() -> None:
    """办理 / 材料 / 流程 are aspects; the subject decides the topic."""
    rnd = random.Random(8)
    hows = ["怎么办理", "如何办理", "办理需要什么材料", "办理流程是什么", "在哪里办理"]
    rows = [_row(i, rnd.choice(PREFIXES) + "新生儿医保" + rnd.choice(hows), "none") for i in range(20)]
    rows += [
        _row(100 + i, rnd.choice(PREFIXES) + "医保门诊报销" + rnd.choice(hows), "none") for i in range(12)
    ]
    a = analyse(rows, WEEK, text=_text())
    assert [(t.count, "新生儿" in t.label, "门诊" in t.label) for t in a.topics] == [
        (20, True, False),
        (12, False, True),
    ]
