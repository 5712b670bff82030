"""The ticket service on both backends: opening (consent, masking, numbers, idempotency, due dates),
the lifecycle with its audit trail, optimistic locking, reply delivery, rating, publishing, lists
and the public lookup."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from handoff.models import Department, Ticket, TicketEvent
from handoff.privacy import id_checksum
from handoff.sla import WorkCalendar
from handoff.tickets import (
    CLOSED,
    CONFLICT_MESSAGE,
    IN_PROGRESS,
    PENDING,
    REPLIED,
    SUPPLEMENT,
    TicketService,
    TicketView,
)
from handoff.tickets import service as tickets_module
from knowledge.db import make_sessionmaker
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import CHINA_TZ

PHONE = "13812345678"
ID_NO = "11010519491231002" + id_checksum("11010519491231002")
EMAIL = "zhang.san@example.com"
FRIDAY = dt.datetime(2025, 9, 26, 10, 0, tzinfo=CHINA_TZ)  # before National Day 2025


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


class RecordingNotifier:
    """Records what it is handed and what the reply's own transaction sees at that moment."""

    def __init__(self) -> None:
        self.calls: list[TicketView] = []
        self.status_in_transaction: list[str] = []

    def enqueue(self, session: Session, ticket: TicketView) -> None:
        row = session.scalar(select(Ticket).where(Ticket.no == ticket.no))
        assert row is not None and session.in_transaction()
        self.status_in_transaction.append(row.status)
        self.calls.append(ticket)


class FailingNotifier:
    def enqueue(self, session: Session, ticket: TicketView) -> None:
        raise RuntimeError(f"outbox write for {PHONE} failed")


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY)


@pytest.fixture
def make_service(sessions: sessionmaker[Session], clock: Clock) -> Callable[..., TicketService]:
    calendar = WorkCalendar(sessions)

    def make(**kwargs: object) -> TicketService:
        kwargs.setdefault("limits", {"市人社局": 20, "市医保局": 10})
        kwargs.setdefault("clock", clock)
        return TicketService(sessions, calendar, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def service(make_service: Callable[..., TicketService]) -> TicketService:
    return make_service()


def _open(
    service: TicketService, question: str = "灵活就业人员社保补贴怎么申请？", **kwargs: object
) -> TicketView:
    kwargs.setdefault("channel", "web")
    kwargs.setdefault("user_ref", "u1")
    return service.open(question=question, **kwargs)  # type: ignore[arg-type]


def _raw_dump(sessions: sessionmaker[Session]) -> tuple[list[Ticket], str]:
    """Every ticket row and a text dump of everything but the contact fields."""
    with sessions() as s:
        rows = list(s.execute(select(Ticket)).scalars())
        events = list(s.execute(select(TicketEvent)).scalars())
        parts = [json.dumps([t.question, t.transcript, t.reply, t.matched], ensure_ascii=False) for t in rows]
        parts += [json.dumps(e.detail, ensure_ascii=False) for e in events]
        return rows, "\n".join(parts)


# --- opening ---------------------------------------------------------------------------------------


def test_open_without_contact(service: TicketService) -> None:
    t = _open(service)
    assert t.no == "LY20250926-0001"
    assert t.status == PENDING == "待受理"
    assert t.department == "政务公开办公室"
    assert t.contact_name is None and t.contact_phone is None and t.consent_at is None
    assert re.fullmatch(r"[0-9]{6}", t.verify_code)
    assert t.version == 1
    assert t.created_at == FRIDAY.astimezone(dt.UTC)
    assert [e.action for e in service.events(t.no)] == ["open"]
    assert service.get(t.no) == t


def test_contact_requires_consent_and_nothing_is_stored(
    service: TicketService, sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(InvalidInput) as err:
        _open(service, contact_name="张三", contact_phone=PHONE)
    assert "同意" in err.value.user_message
    with pytest.raises(InvalidInput):
        _open(service, contact_phone=PHONE, consent=False)
    assert service.list() == []
    assert _raw_dump(sessions)[0] == []


def test_contact_with_consent_is_clear_but_texts_are_masked(
    service: TicketService, sessions: sessionmaker[Session]
) -> None:
    question = f"我的手机{PHONE}，身份证{ID_NO}，邮箱{EMAIL}，补贴什么时候到账？"
    t = _open(
        service,
        question=question,
        transcript=[
            {"role": "user", "text": f"电话 138 1234 5678 身份证 {ID_NO}", "at": FRIDAY},
            {"role": "bot", "text": "抱歉，暂未找到答案，您可以留言。"},
        ],
        contact_name="张三",
        contact_phone="+86 138-1234-5678",
        consent=True,
    )
    assert t.contact_name == "张三"
    assert t.contact_phone == PHONE  # normalised, in clear
    assert t.consent_at == FRIDAY.astimezone(dt.UTC)
    assert PHONE not in t.question and ID_NO not in t.question and EMAIL not in t.question
    assert "138****5678" in t.question and "补贴什么时候到账" in t.question
    assert "110105" in t.question and "****" in t.question
    assert [e["role"] for e in t.transcript] == ["user", "bot"]
    assert "1234 5678" not in t.transcript[0]["text"] and ID_NO not in t.transcript[0]["text"]
    assert t.transcript[0]["at"].startswith("2025-09-26T10:00")
    rows, dump = _raw_dump(sessions)
    assert len(rows) == 1 and rows[0].contact_phone == PHONE
    for secret in (PHONE, ID_NO, EMAIL, "1234 5678"):
        assert secret not in dump
    assert service.events(t.no)[0].detail["contact"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"question": "   "}, "留言内容"),
        ({"question": "问" * 2001}, "过长"),
        ({"contact_phone": "12345", "consent": True}, "联系电话"),
        ({"contact_name": "名" * 51, "consent": True}, "姓名"),
        ({"transcript": [{"role": "admin", "text": "x"}]}, "对话记录"),
        ({"user_ref": ""}, "用户"),
    ],
)
def test_open_rejects_bad_input(service: TicketService, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"question": "问题", "channel": "web", "user_ref": "u1"} | kwargs
    with pytest.raises(InvalidInput) as err:
        service.open(**args)  # type: ignore[arg-type]
    assert message in err.value.user_message
    assert service.list() == []


def test_department_from_nearest_match_and_its_limit(service: TicketService) -> None:
    matched = [
        {"kind": "faq", "id": "f1", "unit": "市人社局", "score": 0.61},
        {"kind": "policy", "id": "p9", "unit": "市医保局", "score": 0.72},
    ]
    t = _open(service, matched=matched)
    assert t.department == "市医保局"  # the higher score wins
    assert [m["id"] for m in t.matched] == ["p9", "f1"]
    assert t.due_date == service._calendar.add_working_days(FRIDAY.date(), 10).day
    explicit = _open(service, matched=matched, department="市人社局")
    assert explicit.department == "市人社局"
    assert explicit.due_date == service._calendar.add_working_days(FRIDAY.date(), 20).day
    assert _open(service, matched=[{"kind": "faq", "id": "f2"}]).department == "政务公开办公室"


def test_due_date_counts_working_days_across_national_day(service: TicketService) -> None:
    # 2025: 28 Sep (Sunday) is a make-up workday, 1-8 Oct are holidays.
    # Working days after Fri 26 Sep: 28, 29, 30 Sep, 9, 10 Oct -> due Friday 10 Oct.
    t = _open(service)
    assert t.due_date == dt.date(2025, 10, 10)
    assert t.due_warnings == ()


def test_due_date_into_unknown_year_warns(make_service: Callable[..., TicketService], clock: Clock) -> None:
    clock.now = dt.datetime(2026, 12, 21, 9, 0, tzinfo=CHINA_TZ)
    t = _open(make_service(), department="市人社局")  # 20 working days reach 2027
    assert t.due_date.year == 2027
    assert any("2027" in w for w in t.due_warnings)
    assert make_service().events(t.no)[0].detail["due_warnings"] == list(t.due_warnings)


def test_numbers_are_per_local_day(service: TicketService, clock: Clock) -> None:
    assert [_open(service).no for _ in range(3)] == [
        "LY20250926-0001",
        "LY20250926-0002",
        "LY20250926-0003",
    ]
    clock.now = dt.datetime(2025, 9, 26, 17, 0)  # naive = UTC: already 27 Sep 01:00 in China
    assert _open(service).no == "LY20250927-0001"
    clock.now = dt.datetime(2025, 9, 26, 15, 59, tzinfo=dt.UTC)  # 23:59 in China
    assert _open(service).no == "LY20250926-0004"


def test_numbers_unique_under_concurrency(service: TicketService) -> None:
    def work(i: int) -> list[str]:
        return [_open(service, user_ref=f"u{i}").no for _ in range(3)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = [no for batch in pool.map(work, range(8)) for no in batch]
    assert len(numbers) == 24
    assert sorted(numbers) == [f"LY20250926-{n:04d}" for n in range(1, 25)]
    assert service.counts()[PENDING] == 24


def test_failed_open_stores_nothing_and_uses_no_number(
    service: TicketService, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> None:
    def broken_event(**kwargs: object) -> None:
        raise RuntimeError("event table unavailable")

    with monkeypatch.context() as m:
        m.setattr(tickets_module, "TicketEvent", broken_event)
        with pytest.raises(RuntimeError):
            _open(service)
    assert _raw_dump(sessions)[0] == []
    assert _open(service).no == "LY20250926-0001"


def test_idempotency_key_returns_the_same_ticket(service: TicketService) -> None:
    first = _open(service, idempotency_key="req-1")
    again = _open(service, idempotency_key="req-1", question="重复提交")
    assert again.no == first.no and again.question == first.question
    assert len(service.list()) == 1
    with pytest.raises(Conflict):
        _open(service, idempotency_key="req-1", user_ref="someone-else")
    assert _open(service, idempotency_key="req-2").no != first.no


def test_idempotency_under_concurrent_retries(service: TicketService) -> None:
    barrier = threading.Barrier(6)

    def work(_: int) -> str:
        barrier.wait()
        return _open(service, idempotency_key="retry-key").no

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = set(pool.map(work, range(6)))
    assert len(numbers) == 1
    assert len(service.list()) == 1


# --- lifecycle -------------------------------------------------------------------------------------


def test_lifecycle_with_audit_events(service: TicketService, clock: Clock) -> None:
    t = _open(service)
    t = service.assign(t.no, staff="li")
    assert (t.status, t.assigned_to, t.version) == (IN_PROGRESS, "li", 2)
    clock.advance(hours=2)
    t = service.reply(t.no, staff="li", text="请登录人社网上办事大厅申请。")
    assert (t.status, t.replied_by, t.version) == (REPLIED, "li", 3)
    assert t.replied_at == (FRIDAY + dt.timedelta(hours=2)).astimezone(dt.UTC)
    t = service.close(t.no, by="li")
    assert t.status == CLOSED and t.closed_at is not None
    with pytest.raises(InvalidInput):
        service.reply(t.no, staff="li", text="补充")
    with pytest.raises(InvalidInput):
        service.assign(t.no, staff="wang")
    with pytest.raises(InvalidInput):
        service.close(t.no, by="li")
    t = service.reopen(t.no, by="supervisor", reason=f"群众来电 {PHONE} 反映未解决")
    assert t.status == IN_PROGRESS and t.closed_at is None
    t = service.reply(t.no, staff="li", text="补充答复。")
    events = service.events(t.no)
    assert [e.action for e in events] == ["open", "assign", "reply", "close", "reopen", "reply"]
    assert [e.actor for e in events[1:]] == ["li", "li", "li", "supervisor", "li"]
    assert events[4].detail["from"] == CLOSED and PHONE not in events[4].detail["reason"]
    assert events[4].label == "重新办理"
    assert events[2].detail["first"] is True and events[5].detail["first"] is False
    assert t.version == 6


def test_reply_directly_from_pending_and_close_rules(service: TicketService) -> None:
    t = service.reply(_open(service).no, staff="zhao", text="已答复。")
    assert t.status == REPLIED and t.assigned_to == "zhao"
    spam = _open(service, question="广告")
    with pytest.raises(InvalidInput) as err:
        service.close(spam.no, by="zhao")
    assert "原因" in err.value.user_message
    assert service.close(spam.no, by="zhao", reason="无效留言").status == CLOSED
    with pytest.raises(InvalidInput):
        service.reply(t.no, staff="zhao", text="   ")
    with pytest.raises(NotFound):
        service.assign("LY20000101-0001", staff="zhao")


def test_transfer_recomputes_due_date(service: TicketService, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add(Department(name="市人社局", active=True))  # transfers go only to known departments
    t = service.assign(_open(service).no, staff="li")
    assert t.due_date == dt.date(2025, 10, 10)
    t = service.transfer(t.no, to_department="市人社局", reason="属人社职责", by="li")
    assert (t.status, t.department, t.assigned_to) == (PENDING, "市人社局", None)
    assert t.due_date == service._calendar.add_working_days(FRIDAY.date(), 20).day
    detail = service.events(t.no)[-1].detail
    assert detail["from"] == "政务公开办公室" and detail["to"] == "市人社局"
    assert detail["due_date"] == ["2025-10-10", t.due_date.isoformat()]
    with pytest.raises(InvalidInput):
        service.transfer(t.no, to_department="市人社局", reason="x", by="li")


def test_notes_are_masked_and_do_not_bump_version(service: TicketService) -> None:
    t = _open(service)
    note = service.add_note(t.no, by="li", text=f"已电话联系 {PHONE}")
    assert PHONE not in note.detail["text"] and "138****5678" in note.detail["text"]
    assert service.get(t.no).version == t.version


def test_optimistic_lock_conflict(service: TicketService) -> None:
    t = _open(service)
    seen = t.version
    service.assign(t.no, staff="li", expected_version=seen)
    with pytest.raises(Conflict) as err:
        service.reply(t.no, staff="wang", text="答复", expected_version=seen)
    assert err.value.user_message == CONFLICT_MESSAGE == "该留言已被他人更新，请刷新后再操作"
    current = service.get(t.no)
    assert current.reply is None and current.assigned_to == "li"
    assert [e.action for e in service.events(t.no)] == ["open", "assign"]


def test_version_column_guards_stale_writes(service: TicketService, sessions: sessionmaker[Session]) -> None:
    t = _open(service)
    with sessions() as stale:
        row = stale.execute(select(Ticket).where(Ticket.no == t.no)).scalar_one()
        stale.expunge(row)
        stale.rollback()  # the stale copy outlives its transaction (a form loaded earlier)
        service.assign(t.no, staff="li")  # another worker commits version 2 meanwhile
        stale.add(row)
        row.assigned_to = "wang"
        with pytest.raises(StaleDataError):
            stale.commit()
    assert service.get(t.no).assigned_to == "li"


def test_concurrent_changes_are_serialised(service: TicketService) -> None:
    t = _open(service)

    def work(i: int) -> int:
        return service.assign(t.no, staff=f"s{i}").version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = sorted(pool.map(work, range(6)))
    assert versions == list(range(2, 8))
    assert [e.action for e in service.events(t.no)].count("assign") == 6


# --- delivery --------------------------------------------------------------------------------------


def test_notifier_gets_the_ticket_inside_the_reply_transaction(
    make_service: Callable[..., TicketService],
) -> None:
    notifier = RecordingNotifier()
    service = make_service(notifier=notifier)
    t = service.reply(_open(service).no, staff="li", text="答复内容")
    assert notifier.status_in_transaction == [REPLIED]
    (view,) = notifier.calls
    assert view.no == t.no and view.reply == "答复内容" and view.version == t.version
    assert service.events(t.no)[-1].action == "reply"  # nothing is sent (or recorded as sent) yet


def test_reply_and_its_message_commit_together(make_service: Callable[..., TicketService]) -> None:
    service = make_service(notifier=FailingNotifier())
    no = _open(service).no
    with pytest.raises(RuntimeError):
        service.reply(no, staff="li", text="答复内容")
    stored = service.get(no)
    assert stored.status != REPLIED and stored.reply is None  # no reply without its message


def test_delivery_attempts_are_recorded_without_a_new_version(
    make_service: Callable[..., TicketService],
) -> None:
    service = make_service()
    t = service.reply(_open(service).no, staff="li", text="答复内容")
    failed = service.record_delivery(t.no, channel="wechat", ok=False, error=f"to {PHONE}: 45015", attempt=1)
    assert failed.detail["ok"] is False and PHONE not in failed.detail["error"]
    retry = service.record_delivery(t.no, channel="wechat", ok=True, attempt=2)
    assert retry.detail == {"channel": "wechat", "ok": True, "attempt": 2}
    assert service.get(t.no).version == t.version


# --- rating, publishing ----------------------------------------------------------------------------


def test_rating_once_and_dissatisfied_reopens(service: TicketService) -> None:
    a = _open(service)
    with pytest.raises(InvalidInput):
        service.rate(a.no, rating="满意")  # no reply yet
    service.reply(a.no, staff="li", text="答复")
    with pytest.raises(InvalidInput):
        service.rate(a.no, rating="很好")
    with pytest.raises(NotFound):
        service.rate(a.no, rating="满意", verify_code="000000" if a.verify_code != "000000" else "111111")
    done = service.rate(a.no, rating="满意", verify_code=a.verify_code)
    assert done.status == CLOSED and done.rating == "满意" and not done.flagged
    with pytest.raises(InvalidInput) as err:
        service.rate(a.no, rating="不满意")
    assert "已评价" in err.value.user_message

    b = _open(service)
    service.reply(b.no, staff="li", text="答复")
    unhappy = service.rate(b.no, rating="不满意")
    assert unhappy.status == IN_PROGRESS and unhappy.flagged and unhappy.closed_at is None
    assert service.events(b.no)[-1].detail == {"rating": "不满意", "from": REPLIED, "to": IN_PROGRESS}
    assert service.counts()["flagged"] == 1
    assert [t.no for t in service.list(flagged=True)] == [b.no]


def test_publish_stores_masked_text(service: TicketService) -> None:
    t = _open(service, question=f"我的电话{PHONE}，补贴何时发放？")
    with pytest.raises(InvalidInput):
        service.publish(t.no, by="editor")
    service.reply(t.no, staff="li", text=f"已核实，请联系 {EMAIL} 补充材料。")
    p = service.publish(t.no, by="editor")
    assert p.published and p.published_at is not None
    assert (
        p.publish_question is not None
        and PHONE not in p.publish_question
        and "补贴何时发放" in p.publish_question
    )
    assert p.publish_reply is not None and EMAIL not in p.publish_reply and "补充材料" in p.publish_reply
    edited = service.publish(t.no, by="editor", question=f"身份证{ID_NO}的补贴问题")
    assert edited.publish_question is not None and ID_NO not in edited.publish_question
    assert [x.no for x in service.list(published=True)] == [t.no]
    hidden = service.publish(t.no, by="editor", published=False)
    assert not hidden.published and service.list(published=True) == []
    actions = [e.action for e in service.events(t.no)]
    assert actions[-3:] == ["publish", "publish", "unpublish"]


# --- lists and lookup ------------------------------------------------------------------------------


def test_list_sorting_filters_overdue_and_counts(service: TicketService, clock: Clock) -> None:
    slow = _open(service, question="养老保险转移", department="市人社局")  # 20 working days
    medium = _open(service, question="医保报销比例", department="市医保局")  # 10
    quick = _open(service, question="信息公开申请")  # 5 -> 2025-10-10
    done = _open(service, question="已经答复的")
    service.reply(done.no, staff="li", text="答复")
    assert [t.no for t in service.list()] == [quick.no, done.no, medium.no, slow.no]
    assert [t.no for t in service.list(department="市医保局")] == [medium.no]
    assert [t.no for t in service.list(department=["市医保局", "市人社局"])] == [medium.no, slow.no]
    assert [t.no for t in service.list(status=REPLIED)] == [done.no]
    assert [t.no for t in service.list(text="医保")] == [medium.no]
    assert [t.no for t in service.list(text=slow.no.lower())] == [slow.no]
    assert service.list(text="100%_") == []
    assert [t.no for t in service.list(limit=2, offset=1)] == [done.no, medium.no]
    with pytest.raises(InvalidInput):
        service.list(status="处理中")
    assert service.list(overdue=True) == []

    clock.now = dt.datetime(2025, 10, 13, 9, 0, tzinfo=CHINA_TZ)  # after quick's due date
    late = service.list(overdue=True)
    assert [t.no for t in late] == [quick.no] and late[0].overdue
    assert done.no in [t.no for t in service.list(overdue=False)]  # replied: not overdue
    counts = service.counts()
    assert counts == {
        PENDING: 3,
        IN_PROGRESS: 0,
        SUPPLEMENT: 0,
        REPLIED: 1,
        CLOSED: 0,
        "overdue": 1,
        "flagged": 0,
    }
    assert service.counts(department="市医保局")[PENDING] == 1


def test_lookup_requires_the_code(service: TicketService) -> None:
    t = _open(service)
    assert service.lookup(t.no.lower(), f" {t.verify_code} ").no == t.no
    wrong = "000000" if t.verify_code != "000000" else "999999"
    with pytest.raises(NotFound) as bad_code:
        service.lookup(t.no, wrong)
    with pytest.raises(NotFound) as bad_no:
        service.lookup("LY20250926-9999", t.verify_code)
    assert bad_code.value.user_message == bad_no.value.user_message


def test_find_for_user(service: TicketService, clock: Clock) -> None:
    first = _open(service, user_ref="alice")
    clock.advance(minutes=5)
    second = _open(service, user_ref="alice")
    _open(service, user_ref="bob")
    _open(service, user_ref="alice", channel="wechat")
    assert [t.no for t in service.find_for_user("web", "alice")] == [second.no, first.no]


def test_constructor_rejects_bad_limits(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError):
        TicketService(sessions, WorkCalendar(), limits={"市人社局": 0})
    with pytest.raises(ValueError):
        TicketService(sessions, WorkCalendar(), prefix="留言")
