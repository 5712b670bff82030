"""Time limits on both backends with a frozen clock: per-category limits, a category change, 延期
(request, approval, refusal) and 补正 (pause, the citizen's answer, the limit passing), with the due
dates hand-computed across National Day 2026 and its 调休 Saturday, and the citizen's outbox notices
queued exactly once.

The 2026 calendar used below (State Council notice, chinese_calendar):
    Mon 09-28 .. Wed 09-30  workdays
    Thu 10-01 .. Wed 10-07  National Day holiday (放假)
    Thu 10-08, Fri 10-09    workdays
    Sat 10-10               调休 workday
    Sun 10-11               rest
    Mon 10-12 .. Fri 10-16, Mon 10-19 .. Fri 10-23   workdays
Working days after Mon 09-28: 1=09-29 2=09-30 3=10-08 4=10-09 5=10-10(Sat) 6=10-12 7=10-13 8=10-14
9=10-15 10=10-16 11=10-19 12=10-20 13=10-21 14=10-22 15=10-23.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Delivery
from bot.notifier import TicketNotices, render_delivery
from bot.pipeline.outbox import Outbox
from handoff.models import AuditEntry, TicketEvent
from handoff.sla import WorkCalendar
from handoff.tickets import IN_PROGRESS, SUPPLEMENT, TicketService
from handoff.tickets.limits import CategoryLimits
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ

D = dt.date
MONDAY = dt.datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)


@contextmanager
def refused(message: str) -> Iterator[None]:
    """InvalidInput whose Chinese text (what staff and citizens read) contains `message`."""
    with pytest.raises(InvalidInput) as exc:
        yield
    assert message in exc.value.user_message, exc.value.user_message


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, day: dt.date, hour: int = 10) -> None:
        self.now = dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=CHINA_TZ)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def service(sessions: sessionmaker[Session], clock: Clock) -> TicketService:
    notices = TicketNotices(Outbox(sessions, render=render_delivery))
    return TicketService(
        sessions,
        WorkCalendar(sessions),
        default_limit=3,  # 建议 and 举报 have no limit of their own here
        clock=clock,
        category_limits=CategoryLimits(sessions, {"咨询": 5, "投诉": 10}),
        notifier=notices,
        notices=notices,
        supplement_limit=3,
    )


def _open(service: TicketService, category: str = "咨询") -> str:
    return service.open(
        question="灵活就业社保补贴怎么申请", channel="web", user_ref="u1", category=category
    ).no


def _rows(sessions: sessionmaker[Session], kind: str) -> list[Delivery]:
    with sessions() as s:
        return list(s.execute(select(Delivery).where(Delivery.kind == kind)).scalars())


def _actions(sessions: sessionmaker[Session], service: TicketService, no: str) -> list[str]:
    return [e.action for e in service.events(no)]


def test_category_limits_give_the_due_date(service: TicketService, sessions: sessionmaker[Session]) -> None:
    # 咨询 5 working days from Mon 09-28: 09-29, 09-30, 10-08, 10-09, 10-10 (调休 Saturday)
    assert service.get(_open(service, "咨询")).due_date == D(2026, 10, 10)
    # 投诉 10: ... 10-12, 10-13, 10-14, 10-15, 10-16
    t = service.get(_open(service, "投诉"))
    assert (t.due_date, t.limit_days) == (D(2026, 10, 16), 10)
    # 建议 has no limit of its own: the global 3 -> 09-29, 09-30, 10-08
    assert service.get(_open(service, "建议")).due_date == D(2026, 10, 8)
    # the admin's stored limit overrides the setting for tickets opened afterwards
    limits = CategoryLimits(sessions, {"咨询": 5, "投诉": 10})
    assert limits.save({"建议": 2, "投诉": None}) == {"建议": [None, 2]}
    assert service.get(_open(service, "建议")).due_date == D(2026, 9, 30)  # 09-29, 09-30
    assert [(r.category, r.days, r.edited) for r in limits.rows()][:3] == [
        ("咨询", 5, False),
        ("建议", 2, True),
        ("投诉", 10, False),
    ]
    with refused("1 到 365"):
        limits.save({"咨询": 0})


def test_changing_the_category_recomputes_from_the_received_date(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    no = _open(service, "咨询")  # due 10-10
    clock.at(D(2026, 10, 8))  # changed later: still counted from Mon 09-28
    t = service.set_category(no, category="投诉", by="alice")
    assert (t.category, t.due_date, t.limit_days) == ("投诉", D(2026, 10, 16), 10)
    event = service.events(no)[-1]
    assert event.action == "category" and event.detail["due_date"] == ["2026-10-10", "2026-10-16"]
    assert event.detail["limit_days"] == [5, 10] and event.actor == "alice"
    with refused("已是"):
        service.set_category(no, category="投诉", by="alice")


def test_extension_request_and_approval_move_the_due_date_exactly(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    no = _open(service, "投诉")  # 10 working days: due 10-16
    service.assign(no, staff="alice")
    clock.at(D(2026, 10, 12))
    t = service.request_extension(no, by="alice", reason="涉及多个部门，需要会商", new_limit=15)  # 10 -> 15
    assert t.due_date == D(2026, 10, 16)  # nothing moves before the decision
    with refused("待审批"):
        service.request_extension(no, by="alice", reason="再延", days=2)
    with refused("自己"):
        service.decide_extension(no, by="alice", approve=True)
    t = service.decide_extension(no, by="sue", approve=True, note="同意")
    # 15 working days from 09-28: ... 10-16 (10), 10-19, 10-20, 10-21, 10-22, 10-23 (15)
    assert (t.due_date, t.extension_days) == (D(2026, 10, 23), 5)
    [ext] = service.extensions(no)
    assert (ext.status, ext.days, ext.due_before, ext.due_after, ext.decided_by) == (
        "approved",
        5,
        D(2026, 10, 16),
        D(2026, 10, 23),
        "sue",
    )
    assert _actions(sessions, service, no)[-2:] == ["extension_request", "extension_approve"]
    [row] = _rows(sessions, "ticket_extended")
    assert (row.channel, row.user_id) == ("web", "u1")
    assert row.data == {
        "ticket_no": no,
        "due_date": "2026-10-23",
        "days": 5,
        "reason": "涉及多个部门，需要会商",
    }
    with refused("没有待审批"):
        service.decide_extension(no, by="sue", approve=True)
    assert len(_rows(sessions, "ticket_extended")) == 1  # told once
    text = render_delivery(Outbox(sessions, render=render_delivery).rows()[0]).text
    assert no in text and "2026年10月23日" in text and "涉及多个部门" in text


def test_a_refused_extension_leaves_the_due_date(
    service: TicketService, sessions: sessionmaker[Session]
) -> None:
    no = _open(service, "咨询")  # due 10-10
    service.request_extension(no, by="alice", reason="材料较多", days=3)
    t = service.decide_extension(no, by="sue", approve=False, note="请按期办理")
    assert (t.due_date, t.extension_days) == (D(2026, 10, 10), 0)
    assert service.extensions(no)[0].status == "refused"
    assert _rows(sessions, "ticket_extended") == []
    # a new request after the refusal: 3 extra days from 10-10: 10-12, 10-13, 10-14
    service.request_extension(no, by="alice", reason="材料较多", days=3)
    assert service.decide_extension(no, by="sue", approve=True).due_date == D(2026, 10, 14)


def test_supplement_pause_moves_the_due_date_by_the_working_days_paused(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    no = _open(service, "咨询")  # due 10-10
    clock.at(D(2026, 9, 29))
    t = service.request_supplement(no, by="alice", text="请补充您的参保地和参保年限")
    assert (t.status, t.overdue) == (SUPPLEMENT, False)
    [asked] = _rows(sessions, "ticket_supplement")
    # deadline: 3 working days after Tue 09-29: 09-30, 10-08, 10-09
    assert asked.data == {"ticket_no": no, "request": "请补充您的参保地和参保年限", "deadline": "2026-10-09"}
    with refused("不能要求补正"):
        service.request_supplement(no, by="alice", text="再补充")
    clock.at(D(2026, 10, 12))  # after the old due date: paused tickets are never overdue
    assert service.get(no).overdue is False
    clock.at(D(2026, 10, 9))
    t = service.supply(no, text="参保地上海，缴费3年", via="board")
    # paused: the working days after 09-29 up to 10-09: 09-30, 10-08, 10-09 = 3;
    # 10-10 + 3 working days: 10-12, 10-13, 10-14 (= 8 working days from 09-28)
    assert (t.status, t.paused_days, t.due_date) == (IN_PROGRESS, 3, D(2026, 10, 14))
    [sup] = service.supplements(no)
    assert (sup.status, sup.via, sup.paused_days, sup.answer) == (
        "answered",
        "board",
        3,
        "参保地上海，缴费3年",
    )
    assert _actions(sessions, service, no)[-2:] == ["supplement_request", "supplement_answer"]
    [resumed] = _rows(sessions, "ticket_resumed")
    assert resumed.data == {"ticket_no": no, "due_date": "2026-10-14", "via": "board"}
    with refused("不在待补正"):
        service.supply(no, text="再补充一点", via="board")
    # a 延期 after the pause keeps the paused days: 8 + 2 = 10 -> 10-16
    service.request_extension(no, by="alice", reason="需核实", days=2)
    assert service.decide_extension(no, by="sue", approve=True).due_date == D(2026, 10, 16)


def test_the_supplement_limit_passing_resumes_the_ticket(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    no = _open(service, "咨询")  # due 10-10
    clock.at(D(2026, 9, 29))
    service.request_supplement(no, by="alice", text="请补充参保证明")  # deadline 10-09
    clock.at(D(2026, 10, 9), hour=23)
    assert service.expire_supplements() == []  # the deadline day itself is still the citizen's
    clock.at(D(2026, 10, 11), hour=0)  # Sunday 00:00: the limit has passed
    assert service.expire_supplements() == [no]
    assert service.expire_supplements() == []
    t = service.get(no)
    # paused 09-30, 10-08, 10-09, 10-10 (调休 Saturday) = 4; 5 + 4 = 9 working days from 09-28: 10-15
    assert (t.status, t.paused_days, t.due_date) == (IN_PROGRESS, 4, D(2026, 10, 15))
    last = service.events(no)[-1]
    assert (last.action, last.actor, last.detail["via"], last.detail["deadline"]) == (
        "supplement_resume",
        "system",
        "limit",
        "2026-10-09",
    )
    assert [r.data for r in _rows(sessions, "ticket_resumed")] == [
        {"ticket_no": no, "due_date": "2026-10-15", "via": "limit"}
    ]
    assert service.supplements(no)[0].status == "expired"
    told = {d.kind: render_delivery(d).text for d in Outbox(sessions, render=render_delivery).rows()}
    assert "请补充参保证明" in told["ticket_supplement"] and "2026年10月9日前" in told["ticket_supplement"]
    assert "补充期限已过" in told["ticket_resumed"] and "2026年10月15日" in told["ticket_resumed"]
    with sessions() as s:
        audit = s.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)).all()
    assert [tuple(a) for a in audit] == [("system", "supplement_expired", no)]


def test_staff_resume_and_notices_exactly_once(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    no = _open(service, "咨询")
    service.request_supplement(no, by="alice", text="请补充材料")  # Mon 09-28
    clock.at(D(2026, 9, 30))
    t = service.resume(no, by="alice", reason="已电话补充")
    # paused 09-29, 09-30 = 2: 10-10 + 2 -> 10-12, 10-13
    assert (t.paused_days, t.due_date) == (2, D(2026, 10, 13))
    with sessions() as s:
        kinds = dict(
            s.execute(select(Delivery.kind, func.count()).group_by(Delivery.kind)).all()  # type: ignore[arg-type]
        )
        events = s.scalar(select(func.count()).select_from(TicketEvent))
    assert kinds == {"ticket_supplement": 1, "ticket_resumed": 1}
    assert events == 3  # open, supplement_request, supplement_resume


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "1 到 365"),
        ({"new_limit": 4}, "大于当前"),
        ({}, "二选一"),
        ({"days": 2, "new_limit": 9}, "二选一"),
    ],
)
def test_extension_input_is_checked(service: TicketService, kwargs: dict[str, int], message: str) -> None:
    no = _open(service, "咨询")
    with refused(message):
        service.request_extension(no, by="alice", reason="复杂", **kwargs)  # type: ignore[arg-type]
