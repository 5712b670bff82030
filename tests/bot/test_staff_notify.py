"""Staff notifications by e-mail (SQLite, and PostgreSQL where DATABASE_URL names one), end to end through the durable outbox to a real SMTP server
(aiosmtpd on 127.0.0.1): new tickets of a department reach its handlers as one digest at most every
N minutes (0: one mail per ticket); a warning one working day before the due date and an escalation
to the supervisor when overdue, with a frozen clock across the 2026 中秋节/国庆节 holidays and the
调休 Saturday 10 October; each exactly once per ticket and due date, however often the job and the
outbox drain run, each with a line in the ticket's history and an audit entry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select, update

from bot.app import create_app
from bot.staffnotify import JOB_NAME, run_once
from handoff.console import Accounts, ConsoleConfig
from handoff.models import AuditEntry, StaffNotice, Ticket
from handoff.sla import WorkCalendar
from handoff.staff_alerts import StaffAlerts
from handoff.tickets import TicketService
from knowledge.models import CHINA_TZ
from tests.bot.conftest import make_settings

DEPT = "青浦区医疗保障局"
OTHER = "区绿化市容局"
PASSWORD = "Staff-pass-2026!"


class Sink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 Message accepted"

    def take(self) -> list[tuple[str, str, str]]:
        """(recipient, subject, body) of the messages since the last call."""
        out = []
        for rcpts, msg in self.messages:
            body = msg.get_body(("plain",))
            assert body is not None
            out.extend((r, str(msg["Subject"]), body.get_content()) for r in rcpts)
        self.messages.clear()
        return sorted(out)


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _app(url: str, port: int, **overrides: Any) -> FastAPI:
    settings = make_settings(
        url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="policybot@example.gov.cn",
        public_base_url="https://zhengce.example.gov.cn",
        outbox_enabled=False,
        **overrides,
    )
    app = create_app(settings)
    acc = Accounts(app.state.sessions, ConsoleConfig(secret_key="test-secret"))
    acc.add_user("alice", PASSWORD, role="staff", departments=[DEPT], email="alice@example.gov.cn", by="t")
    acc.add_user("carol", PASSWORD, role="staff", departments=[DEPT], email="carol@example.gov.cn", by="t")
    acc.add_user("dave", PASSWORD, role="staff", departments=[DEPT], by="t")  # no address: no mail
    acc.add_user("bob", PASSWORD, role="staff", departments=[OTHER], email="bob@example.gov.cn", by="t")
    acc.add_user("sue", PASSWORD, role="supervisor", email="sue@example.gov.cn", by="t")
    return app


def _service(app: FastAPI, at: dt.datetime, limit: int = 5) -> TicketService:
    """A ticket service whose clock stands at `at` (Beijing time) with `limit` working days."""
    return TicketService(
        app.state.sessions, WorkCalendar(app.state.sessions), default_limit=limit, clock=lambda: at
    )


def _bj(y: int, m: int, d: int, h: int = 12, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=CHINA_TZ)


def _run(app: FastAPI, now: dt.datetime, sink: Sink) -> list[tuple[str, str, str]]:
    alerts = StaffAlerts(app.state.sessions, WorkCalendar(app.state.sessions))
    run_once(alerts, app.state.outbox, app.state.settings, now, mail=True)
    app.state.outbox.drain()
    return sink.take()


def test_new_tickets_are_one_digest_per_handler(db_url: str, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    app = _app(db_url, port, staff_digest_minutes=10)
    t0 = _bj(2026, 11, 24, 9, 0)  # Tuesday
    a = _service(app, t0).open(
        question="医保报销需要什么材料，电话13812345678", channel="web", user_ref="u1", department=DEPT
    )
    b = _service(app, t0 + dt.timedelta(minutes=3)).open(
        question="异地就医怎么备案", channel="web", user_ref="u2", department=DEPT, category="建议"
    )
    _service(app, t0).open(question="行道树修剪", channel="web", user_ref="u3", department=OTHER)
    # the job collects A one minute after it came, B two minutes after B; the digest waits 10
    # minutes from the first item it holds (A, collected at t0+1)
    assert _run(app, t0 + dt.timedelta(minutes=1), sink) == []
    assert _run(app, t0 + dt.timedelta(minutes=5), sink) == []
    assert _run(app, t0 + dt.timedelta(minutes=10), sink) == []
    # at t0+12: one mail per handler of the department with both tickets; bob (other department)
    # gets his own ticket; dave has no address; the supervisor is not told of new tickets
    mails = _run(app, t0 + dt.timedelta(minutes=12), sink)
    assert [m[0] for m in mails] == ["alice@example.gov.cn", "bob@example.gov.cn", "carol@example.gov.cn"]
    to, subject, body = mails[0]
    assert subject == "【政策留言提醒】新留言 2 条"
    assert a.no in body and b.no in body and "行道树" not in body
    assert f"办理链接：https://zhengce.example.gov.cn/console/tickets/{a.no}" in body
    assert "留言类别：建议" in body and "办理期限：" + b.due_date.isoformat() in body
    assert "13812345678" not in body and "138" in body  # the excerpt is masked
    # exactly once: the job and the drain run again, nothing more is sent
    assert _run(app, t0 + dt.timedelta(minutes=13), sink) == []
    assert _run(app, t0 + dt.timedelta(minutes=30), sink) == []
    with app.state.sessions() as s:
        assert s.scalars(select(StaffNotice).where(StaffNotice.queued_at.is_(None))).all() == []
    # a third ticket later: collected at t0+45, it waits its own 10 minutes, then comes alone
    c = _service(app, t0 + dt.timedelta(minutes=40)).open(
        question="生育津贴", channel="web", user_ref="u4", department=DEPT
    )
    assert _run(app, t0 + dt.timedelta(minutes=45), sink) == []
    assert _run(app, t0 + dt.timedelta(minutes=54), sink) == []
    mails = _run(app, t0 + dt.timedelta(minutes=55), sink)
    assert [(m[0], m[1]) for m in mails] == [
        ("alice@example.gov.cn", f"【新留言】{c.no} {DEPT}"),
        ("carol@example.gov.cn", f"【新留言】{c.no} {DEPT}"),
    ]


def test_digest_zero_sends_one_mail_per_ticket(demo_url: str, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    app = _app(demo_url, port, staff_digest_minutes=0)
    t0 = _bj(2026, 11, 24, 9, 0)
    nos = [
        _service(app, t0).open(question=f"问题{i}", channel="web", user_ref=f"u{i}", department=DEPT).no
        for i in range(2)
    ]
    mails = _run(app, t0 + dt.timedelta(minutes=1), sink)
    assert sorted((m[0], m[1]) for m in mails) == sorted(
        (f"{who}@example.gov.cn", f"【新留言】{no} {DEPT}") for who in ("alice", "carol") for no in nos
    )
    assert _run(app, t0 + dt.timedelta(minutes=2), sink) == []
    # transferred while still waiting (待受理): the new department's handlers are told
    Accounts(app.state.sessions, ConsoleConfig(secret_key="test-secret")).add_department(OTHER)
    svc = _service(app, t0 + dt.timedelta(minutes=3))
    svc.transfer(nos[0], to_department=OTHER, reason="职责调整", by="alice")
    mails = _run(app, t0 + dt.timedelta(minutes=4), sink)
    assert [(m[0], m[1]) for m in mails] == [("bob@example.gov.cn", f"【新留言】{nos[0]} {OTHER}")]


def test_warnings_and_escalations_across_holidays(db_url: str, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    app = _app(db_url, port, staff_digest_minutes=0)
    # 2026 (chinese_calendar and 国办发明电〔2025〕7号): 中秋节 Fri 25 Sep; 国庆节 Thu 1 - Wed 7 Oct;
    # Saturday 10 Oct is a 调休 working day, Sunday 11 Oct is not.
    # A: opened Tue 22 Sep, 6 working days: 23 (1), 24 (2), [25 中秋, 26-27 weekend], 28 (3),
    #    29 (4), 30 (5), [1-7 Oct 国庆], Thu 8 Oct (6) -> due 2026-10-08. The working day before it
    #    is Wed 30 Sep (back over the whole holiday): warned then; overdue from Fri 9 Oct.
    a = _service(app, _bj(2026, 9, 22, 10), limit=6).open(
        question="职工医保转移", channel="web", user_ref="a", department=DEPT
    )
    # B: opened Tue 29 Sep, 5 working days: 30 (1), [1-7 Oct], 8 (2), 9 (3), Sat 10 (4, 调休),
    #    [Sun 11], Mon 12 Oct (5) -> due 2026-10-12. The working day before it is the 调休
    #    Saturday 10 Oct: warned on that Saturday; overdue from Tue 13 Oct.
    b = _service(app, _bj(2026, 9, 29, 10), limit=5).open(
        question="门诊慢特病", channel="web", user_ref="b", department=DEPT
    )
    assert (a.due_date, b.due_date) == (dt.date(2026, 10, 8), dt.date(2026, 10, 12))
    # A is taken by alice (her warning only); B stays unassigned (the department's handlers)
    _service(app, _bj(2026, 9, 22, 11)).assign(a.no, staff="alice")
    _service(app, _bj(2026, 9, 29, 11)).assign(b.no, staff="alice")
    with app.state.sessions.begin() as s:  # B back to nobody (a handover that was undone)
        s.execute(update(Ticket).where(Ticket.no == b.no).values(assigned_to=None))
    got: dict[dt.date, list[tuple[str, str]]] = {}
    day = dt.date(2026, 9, 29)
    while day <= dt.date(2026, 10, 14):
        for now in (_bj(day.year, day.month, day.day, 0, 5), _bj(day.year, day.month, day.day, 16)):
            mails = [(to, subject) for to, subject, _ in _run(app, now, sink)]
            if mails:
                got.setdefault(day, []).extend(mails)
        day += dt.timedelta(days=1)
    assert got == {
        dt.date(2026, 9, 30): [("alice@example.gov.cn", f"【即将到期】{a.no} {DEPT}")],
        dt.date(2026, 10, 9): [("sue@example.gov.cn", f"【已超期（督办）】{a.no} {DEPT}")],
        dt.date(2026, 10, 10): [
            ("alice@example.gov.cn", f"【即将到期】{b.no} {DEPT}"),
            ("carol@example.gov.cn", f"【即将到期】{b.no} {DEPT}"),
        ],
        dt.date(2026, 10, 13): [("sue@example.gov.cn", f"【已超期（督办）】{b.no} {DEPT}")],
    }
    # 延期 moves A's due date to Tue 20 Oct: the working day before is Mon 19 Oct, warned again then
    with app.state.sessions.begin() as s:
        s.execute(update(Ticket).where(Ticket.no == a.no).values(due_date=dt.date(2026, 10, 20)))
    assert _run(app, _bj(2026, 10, 16), sink) == []  # Friday: not yet
    mails = _run(app, _bj(2026, 10, 19), sink)
    assert [(m[0], m[1]) for m in mails] == [("alice@example.gov.cn", f"【即将到期】{a.no} {DEPT}")]
    assert "办理期限：2026-10-20" in mails[0][2] and "仅剩一个工作日" in mails[0][2]
    # each step is a line in the ticket's history and an audit entry
    events = [
        (e.action, e.detail.get("due_date"), e.detail.get("to")) for e in app.state.tickets.events(a.no)
    ]
    assert [e for e in events if e[0].startswith("sla_")] == [
        ("sla_warning", "2026-10-08", ["alice"]),
        ("sla_escalation", "2026-10-08", ["sue"]),
        ("sla_warning", "2026-10-20", ["alice"]),
    ]
    with app.state.sessions() as s:
        audit = s.execute(
            select(AuditEntry.action, AuditEntry.target)
            .where(AuditEntry.action.like("sla_%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(r) for r in audit] == [
        ("sla_warning", a.no),
        ("sla_escalation", a.no),
        ("sla_warning", b.no),
        ("sla_escalation", b.no),
        ("sla_warning", a.no),
    ]


def test_dissatisfied_rating_reaches_the_supervisor(demo_url: str, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    app = _app(demo_url, port, staff_digest_minutes=0)
    t0 = _bj(2026, 11, 24, 9)
    svc = _service(app, t0)
    t = svc.open(question="退休金", channel="web", user_ref="u", department=DEPT)
    svc.assign(t.no, staff="alice")
    svc.reply(t.no, staff="alice", text="请到窗口办理。")
    svc.rate(t.no, rating="不满意")
    mails = _run(app, t0 + dt.timedelta(minutes=5), sink)
    assert ("sue@example.gov.cn", f"【不满意评价（督办）】{t.no} {DEPT}") in [(m[0], m[1]) for m in mails]
    assert _run(app, t0 + dt.timedelta(minutes=6), sink) == []


def test_the_scheduled_job_and_no_smtp(demo_url: str, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    app = _app(demo_url, port, staff_digest_minutes=0)
    scheduler = app.state.scheduler
    t0 = _bj(2026, 11, 24, 9)
    _service(app, t0).open(question="问题", channel="web", user_ref="u", department=DEPT)
    now = t0 + dt.timedelta(minutes=3)
    assert scheduler.run_job(scheduler.jobs[JOB_NAME], now) == "done"
    assert scheduler.run_job(scheduler.jobs[JOB_NAME], now) is None  # one run per slot
    app.state.outbox.drain()
    assert [m[0] for m in sink.take()] == ["alice@example.gov.cn", "carol@example.gov.cn"]
    # without SMTP nothing is queued (no mail can be sent), but the events are still recorded
    bare = create_app(make_settings(demo_url, staff_digest_minutes=0))
    assert "email" not in bare.state.outbox.channels
    _service(bare, t0).open(question="问题二", channel="web", user_ref="v", department=DEPT)
    assert (
        bare.state.scheduler.run_job(bare.state.scheduler.jobs[JOB_NAME], now + dt.timedelta(minutes=2))
        == "done"
    )
    assert bare.state.outbox.counts().get("pending", 0) == 0
    assert JOB_NAME not in create_app(make_settings(demo_url, staff_notify_schedule="")).state.scheduler.jobs


def test_smtp_down_is_retried_and_a_refused_address_is_recorded(
    demo_url: str, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    with socket.socket() as s:  # a port nobody listens on: the mail server is down
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    app = _app(demo_url, down, staff_digest_minutes=0)  # first retry after 5 s
    t0 = _bj(2026, 11, 24, 9)
    _service(app, t0).open(question="问题", channel="web", user_ref="u", department=DEPT)
    assert _run(app, t0 + dt.timedelta(minutes=1), sink) == []
    rows = app.state.outbox.rows()
    assert {(r.status, r.attempts) for r in rows} == {("pending", 1)} and len(rows) == 2
    assert all("SMTP connect/login" in (r.last_error or "") for r in rows)
    app.state.outbox.channels["email"].smtp = dataclasses.replace(
        app.state.outbox.channels["email"].smtp, port=port
    )
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=1)
    app.state.outbox.clock = lambda: later
    app.state.outbox.drain()  # the server is back, the backoff has passed: the two mails, once each
    assert [m[0] for m in sink.take()] == ["alice@example.gov.cn", "carol@example.gov.cn"]
    assert {r.status for r in app.state.outbox.rows()} == {"sent"}

    class Refusing(Sink):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return "550 no such user"

    controller = Controller(Refusing(), hostname="127.0.0.1", port=down)
    controller.start()
    try:
        app.state.outbox.channels["email"].smtp = dataclasses.replace(
            app.state.outbox.channels["email"].smtp, port=down
        )
        _service(app, t0).open(question="问题二", channel="web", user_ref="v", department=DEPT)
        _run(app, t0 + dt.timedelta(minutes=3), sink)
        refused = [r for r in app.state.outbox.rows() if r.status != "sent"]
        assert len(refused) == 2 and {r.status for r in refused} == {"impossible"}  # never retried
    finally:
        controller.stop()


def test_the_ticket_page_shows_the_warning(demo_url: str, smtp: tuple[Sink, int]) -> None:
    from fastapi.testclient import TestClient

    from tests.handoff.console_helpers import login

    sink, port = smtp
    app = _app(demo_url, port, staff_digest_minutes=0)
    t = _service(app, _bj(2026, 9, 22, 10), limit=6).open(
        question="职工医保转移", channel="web", user_ref="a", department=DEPT
    )
    _run(app, _bj(2026, 9, 30), sink)  # the working day before Thu 8 Oct (国庆节 in between)
    client = TestClient(app)
    assert login(client, "alice", PASSWORD).status_code == 303
    page = client.get(f"/console/tickets/{t.no}").text
    assert "到期提醒" in page and "办理期限 2026-10-08，已邮件提醒 alice、carol" in page
