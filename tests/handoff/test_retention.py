"""Retention of ticket contact data on both backends: closed tickets lose name and phone after the
retention period with one audit event each (no personal data in it), nothing else is touched, a
second run changes nothing; subject-access lookups and the erasure of tickets."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import Ticket, TicketEvent
from handoff.retention import (
    ERASE_ACTION,
    ERASED_REF,
    PURGE_ACTION,
    erase_tickets,
    export_tickets,
    purge_expired_contacts,
    ticket_users,
    tickets_for,
)
from handoff.sla import WorkCalendar
from handoff.tickets import CLOSED, IN_PROGRESS, TicketService
from knowledge.db import make_sessionmaker, transaction
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ

PHONE = "13812345678"
NAME = "张三"
START = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CHINA_TZ)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def service(sessions: sessionmaker[Session], clock: Clock) -> TicketService:
    return TicketService(sessions, WorkCalendar(sessions), clock=clock)


def _closed(service: TicketService, user: str, *, phone: str | None = PHONE, name: str | None = NAME) -> str:
    t = service.open(
        question=f"失业金怎么领取（{user}）",
        channel="wechat",
        user_ref=user,
        contact_name=name,
        contact_phone=phone,
        consent=bool(name or phone),
    )
    service.reply(t.no, staff="li", text="请到街道社区事务受理服务中心办理。")
    return service.close(t.no, by="li").no


def _row(sessions: sessionmaker[Session], no: str) -> Ticket:
    with sessions() as s:
        t = s.scalar(select(Ticket).where(Ticket.no == no))
        assert t is not None
        return t


def _events(sessions: sessionmaker[Session], no: str, action: str) -> list[TicketEvent]:
    with sessions() as s:
        t = s.scalar(select(Ticket).where(Ticket.no == no))
        assert t is not None
        return list(
            s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id, TicketEvent.action == action))
        )


def test_contacts_of_tickets_closed_long_ago_are_purged_once(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    old = _closed(service, "u-old")
    anonymous = _closed(service, "u-anon", phone=None, name=None)
    clock.now = START + dt.timedelta(days=20)
    recent = _closed(service, "u-recent")
    still_open = service.open(
        question="还没办结的留言",
        channel="web",
        user_ref="u-open",
        contact_name=NAME,
        contact_phone=PHONE,
        consent=True,
    ).no

    now = START + dt.timedelta(days=190)  # old: closed 190 days ago; recent: 170 days ago
    result = purge_expired_contacts(sessions, now, retention_days=180)
    assert result.tickets == (old,)
    gone = _row(sessions, old)
    assert gone.contact_name is None and gone.contact_phone is None
    assert gone.status == CLOSED and gone.question.startswith("失业金怎么领取") and gone.reply
    assert gone.consent_at is not None  # when consent was given stays on record
    for kept in (recent, still_open):
        row = _row(sessions, kept)
        assert (row.contact_name, row.contact_phone) == (NAME, PHONE)

    events = _events(sessions, old, PURGE_ACTION)
    assert len(events) == 1
    assert events[0].actor == "system"
    assert events[0].detail["fields"] == ["contact_name", "contact_phone"]
    assert PHONE not in json.dumps(events[0].detail, ensure_ascii=False)
    assert NAME not in json.dumps(events[0].detail, ensure_ascii=False)
    assert not _events(sessions, anonymous, PURGE_ACTION)  # nothing to remove: no event

    again = purge_expired_contacts(sessions, now, retention_days=180)
    assert again.count == 0
    assert len(_events(sessions, old, PURGE_ACTION)) == 1

    later = purge_expired_contacts(sessions, START + dt.timedelta(days=201), retention_days=180)
    assert later.tickets == (recent,)


def test_reopened_ticket_keeps_its_contact(service: TicketService, sessions: sessionmaker[Session]) -> None:
    no = _closed(service, "u1")
    service.reopen(no, by="supervisor", reason="市民不满意，重新办理")
    result = purge_expired_contacts(sessions, START + dt.timedelta(days=400), retention_days=180)
    assert result.count == 0
    row = _row(sessions, no)
    assert row.status == IN_PROGRESS and row.contact_phone == PHONE


def test_purge_works_through_batches(service: TicketService, sessions: sessionmaker[Session]) -> None:
    numbers = [_closed(service, f"u{i}") for i in range(5)]
    result = purge_expired_contacts(sessions, START + dt.timedelta(days=181), retention_days=180, batch=2)
    assert sorted(result.tickets) == sorted(numbers)
    with sessions() as s:
        assert s.scalar(select(Ticket).where(Ticket.contact_phone.is_not(None))) is None


def test_retention_days_must_be_positive(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError):
        purge_expired_contacts(sessions, START, retention_days=0)


def test_lookup_export_and_erase(
    service: TicketService, sessions: sessionmaker[Session], clock: Clock
) -> None:
    first = service.open(
        question="生育津贴怎么申请",
        channel="wechat",
        user_ref="oUser1",
        contact_name=NAME,
        contact_phone="138 1234 5678",
        consent=True,
        transcript=[{"role": "user", "text": "生育津贴怎么申请"}],
    ).no
    second = service.open(question="匿名的第二条留言", channel="wechat", user_ref="oUser1").no
    other = service.open(
        question="别人的留言",
        channel="web",
        user_ref="wOther",
        contact_name="李四",
        contact_phone="13900001111",
        consent=True,
    ).no

    by_phone = tickets_for(sessions, phone="+86 138-1234-5678")
    assert [_row(sessions, n).id for n in (first,)] == by_phone
    assert ticket_users(sessions, by_phone) == [("wechat", "oUser1")]
    mine = tickets_for(sessions, users=ticket_users(sessions, by_phone))
    assert sorted(_row(sessions, n).id for n in (first, second)) == mine
    assert tickets_for(sessions, ticket_no=f" {other.lower()} ") == [_row(sessions, other).id]
    with pytest.raises(InvalidInput):
        tickets_for(sessions, phone="12345")

    exported = export_tickets(sessions, mine)
    assert [t["no"] for t in exported] == [first, second]
    assert exported[0]["contact_phone"] == PHONE and exported[0]["contact_name"] == NAME
    assert exported[0]["events"][0]["action"] == "open"

    with transaction(sessions) as s:
        changed = erase_tickets(s, mine, now=START + dt.timedelta(days=1), actor="dpo", request="phone")
    assert changed == [first, second]
    row = _row(sessions, first)
    assert (row.contact_name, row.contact_phone, row.transcript, row.user_ref) == (None, None, [], ERASED_REF)
    assert row.question == "生育津贴怎么申请"  # the administrative record stays
    with sessions() as s:
        actors = set(s.scalars(select(TicketEvent.actor).where(TicketEvent.ticket_id == row.id)))
    assert "wechat:oUser1" not in actors and "wechat:erased" in actors
    event = _events(sessions, first, ERASE_ACTION)[0]
    assert event.actor == "dpo" and "oUser1" not in json.dumps(event.detail)
    assert event.detail["fields"] == ["contact_name", "contact_phone", "transcript", "user_ref"]
    assert _row(sessions, other).contact_phone == "13900001111"  # someone else's ticket untouched
    assert tickets_for(sessions, phone=PHONE) == []

    with transaction(sessions) as s:  # idempotent
        assert erase_tickets(s, mine, now=START + dt.timedelta(days=2), actor="dpo", request="phone") == []
    assert len(_events(sessions, first, ERASE_ACTION)) == 1
