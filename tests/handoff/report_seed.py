"""Seed data for the console's weekly-report and dashboard tests (and their browser screenshots): a
week of logged questions for two drafting units, answered questions with ratings, and tickets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import update

from handoff.models import Ticket
from handoff.weekly import previous_week
from knowledge.gaps import parse_week
from knowledge.usage import QueryLogStore
from tests.handoff.console_helpers import OTHER_DEPT, make_users

MED_TEXTS = (
    "新生儿医保怎么办理",
    "新生儿医保在哪里办理",
    "新生儿参加医保需要什么材料",
    "宝宝出生后医保怎么办",
)
DOG_TEXTS = ("养犬登记在哪里办理", "养狗要去哪里登记", "养犬登记需要什么材料")
HR_TEXTS = ("灵活就业人员社保补贴怎么申请", "灵活就业社保补贴如何申领", "灵活就业人员的社保补贴在哪里申请")
HR = "青浦区人力资源和社会保障局"
ANSWERED = ("依申请公开多长时间答复", "政府信息公开申请怎么提交", "知识库是什么")


@dataclass(frozen=True)
class Seeded:
    week: str
    department: str
    ticket_no: str
    reply: str


def seed_week(app: FastAPI, week: str | None = None) -> Seeded:
    """Users (console_helpers.make_users of the ticket's department) and one week of questions:
    8 unanswered about newborn insurance for that department (one handed off to a replied ticket),
    3 about dog registration and 5 about flexible-employment subsidies for two other units, and 24
    answered ones (demo FAQs, some rated)."""
    label = week or previous_week()
    period = parse_week(label)
    tickets = app.state.tickets
    t = tickets.open(question="新生儿医保怎么办理？", channel="web", user_ref="citizen-1")
    reply = "新生儿医保可在出生后3个月内通过“一网通办”或社区事务受理服务中心办理参保登记。"
    tickets.reply(t.no, staff="seed", text=reply)
    dept = t.department
    make_users(app, dept)
    log = QueryLogStore(app.state.sessions)
    start = period.start + dt.timedelta(hours=2)  # Monday 10:00 Beijing time
    # Tickets of that week: replied after 2 and 4 working days, one still open past its due date.
    others = [
        tickets.open(question=q, channel="web", user_ref=f"citizen-{i + 2}")
        for i, q in enumerate(("养犬登记需要什么材料？", "灵活就业社保补贴怎么申请？"))
    ]
    tickets.reply(others[0].no, staff="seed", text="请携带犬只免疫证明到街道办理。")
    times = [
        (t.no, start, start + dt.timedelta(days=2), period.start_day + dt.timedelta(days=7)),
        (
            others[0].no,
            start + dt.timedelta(days=1),
            start + dt.timedelta(days=3),
            period.start_day + dt.timedelta(days=2),
        ),
        (others[1].no, start + dt.timedelta(days=1, hours=3), None, period.start_day + dt.timedelta(days=3)),
    ]
    with app.state.sessions.begin() as s:
        for no, created, replied, due in times:
            values: dict[str, object] = {"created_at": created, "due_date": due}
            if replied is not None:
                values["replied_at"] = replied
            s.execute(
                update(Ticket)
                .where(Ticket.no == no)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    for i in range(8):
        at = start + dt.timedelta(days=i % 6, minutes=7 * i)
        log_id = log.record(
            channel="web" if i % 2 else "wechat",
            user_ref=f"m{i}",
            text=MED_TEXTS[i % 4],
            outcome="none",
            unit=dept,
            at=at,
        )
        if i == 0:
            log.link_ticket(log_id, t.no)
    for i in range(3):
        log.record(
            channel="web",
            user_ref=f"d{i}",
            text=DOG_TEXTS[i],
            outcome="passage",
            unit=OTHER_DEPT,
            at=start + dt.timedelta(days=2, hours=i),
        )
    for i in range(5):
        log.record(
            channel="wechat",
            user_ref=f"h{i}",
            text=HR_TEXTS[i % 3],
            outcome="none",
            unit=HR,
            at=start + dt.timedelta(days=(2 * i) % 7, hours=3),
        )
    kb = app.state.kb
    for i in range(24):
        text = ANSWERED[i % 3]
        hit = kb.ask(text).hits[0]
        log_id = log.record(
            channel=("web", "wechat", "telegram")[i % 3],
            user_ref=f"a{i}",
            text=text,
            outcome="answer",
            score=hit.score,
            faq_id=hit.faq_id,
            at=start + dt.timedelta(days=i % 7, hours=1 + i % 5),
        )
        if i % 4 == 0:
            log.rate(log_id, "useless" if i % 8 == 0 else "useful")
    return Seeded(label, dept, t.no, reply)
