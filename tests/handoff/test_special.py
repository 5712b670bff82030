"""专题 cases (seed 002 二.4): a topic that reaches the configured number of distinct askers within 3
working days, or 3x its 4-week weekly average, opens one case for its drafting unit with a due date
in working days; replaying the same data, or more questions of the same intent, opens nothing new."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from handoff.sla import WorkCalendar
from handoff.special import SpecialRule, SpecialTopics
from knowledge.answer import KnowledgeBase
from knowledge.db import make_sessionmaker
from knowledge.demo import load_demo
from knowledge.errors import InvalidInput
from knowledge.faqs import FaqStore
from knowledge.gaps import set_route
from knowledge.models import CHINA_TZ, to_db_time
from knowledge.policies import PolicyStore
from knowledge.usage import QueryLogStore

MED = "青浦区医疗保障局"
# Wednesday 2026-11-18, 15:00 Beijing time: the window is Mon 16th to Wed 18th
NOW = to_db_time(dt.datetime(2026, 11, 18, 15, 0, tzinfo=CHINA_TZ))
ASKS = [
    "异地就医备案怎么办理",
    "异地就医备案在哪里办",
    "请问异地就医备案流程",
    "异地就医备案需要什么材料",
    "异地就医备案网上能办吗",
    "退休人员异地就医备案怎么弄",
]


@pytest.fixture
def service(engine: Engine) -> SpecialTopics:
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    set_route(sessions, keyword="异地就医", unit=MED, by="admin")
    kb = KnowledgeBase(sessions, refresh_seconds=0.0)
    return SpecialTopics(sessions, kb, WorkCalendar(sessions), SpecialRule(askers=10, due_workdays=10))


def _ask(
    service: SpecialTopics, n: int, start: dt.datetime, *, prefix: str = "c", step_minutes: int = 20
) -> None:
    log = QueryLogStore(service.sessions)
    for i in range(n):
        log.record(
            channel="web",
            user_ref=f"{prefix}{i}",
            session_id=f"{prefix}-s{i}",
            text=ASKS[i % len(ASKS)],
            outcome="none",
            score=0.2,
            at=start + dt.timedelta(minutes=step_minutes * i),
        )


def test_window_is_the_last_three_working_days(service: SpecialTopics) -> None:
    w = service.window(NOW)
    assert (w.start_day, w.end_day) == (dt.date(2026, 11, 16), dt.date(2026, 11, 18))
    monday = to_db_time(dt.datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ))
    assert service.window(monday).start_day == dt.date(2026, 11, 19)  # Thu, Fri, (weekend), Mon


def test_concentrated_topic_opens_one_case_and_replay_opens_nothing(service: SpecialTopics) -> None:
    _ask(service, 12, NOW - dt.timedelta(hours=30))  # 12 citizens since yesterday morning
    opened = service.scan(NOW)
    assert len(opened) == 1
    case = opened[0]
    assert case.unit == MED and case.askers == 12 and case.questions == 12 and case.trigger == "askers"
    assert case.no.startswith("ZT20261118") and case.status == "open" and case.emailed_at is None
    assert case.due_on == service.calendar.add_working_days(dt.date(2026, 11, 18), 10).day
    assert "、" not in case.label and case.label in ASKS + ["请问异地就医备案流程"]
    assert service.scan(NOW) == []  # the same data again
    _ask(service, 5, NOW - dt.timedelta(hours=1), prefix="late", step_minutes=5)
    assert service.scan(NOW + dt.timedelta(hours=1)) == []  # more of the same intent
    assert [c.no for c in service.cases(status="open")] == [case.no]
    closed = service.close(case.no, by="admin")
    assert closed.status == "closed" and closed.closed_by == "admin"
    assert service.scan(NOW + dt.timedelta(hours=2)) == []  # closed within 4 weeks: still known


def test_below_the_threshold_nothing_opens(service: SpecialTopics) -> None:
    _ask(service, 9, NOW - dt.timedelta(hours=30))
    assert service.scan(NOW) == []


def test_surge_over_the_four_week_average_opens_a_case(service: SpecialTopics) -> None:
    # one question a week in the four weeks before, then 4 citizens in two days: 4 >= 3 x 1
    log = QueryLogStore(service.sessions)
    for w in range(1, 5):
        log.record(
            channel="web",
            user_ref=f"old{w}",
            text=ASKS[0],
            outcome="none",
            at=NOW - dt.timedelta(weeks=w, days=3),
        )
    _ask(service, 4, NOW - dt.timedelta(hours=30))
    opened = service.scan(NOW)
    assert [(c.trigger, c.askers) for c in opened] == [("surge", 4)]


def test_bad_rule_is_refused() -> None:
    with pytest.raises(InvalidInput):
        SpecialRule(askers=0)
    with pytest.raises(InvalidInput):
        SpecialRule(surge_factor=1.0)
