"""A citizen's data across the stores on both backends: a real widget conversation and ticket, then
the export and the erasure by phone, ticket number and channel user (functions and the
`policybot privacy` commands), the daily retention job, and the access log with its purge."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import cli
from bot.accesslog import purge_access_log
from bot.app import create_app
from bot.conversation import Reply
from bot.models import AccessLog, AppValue, ChatSession, InboundMessage, JobRun, Outbox
from bot.privacy import erase_data, export_data, preview, resolve, run_retention, user_ref_hash
from bot.settings import Settings, get_settings
from handoff.models import AuditEntry, Ticket
from handoff.retention import ERASED_REF
from knowledge.db import make_sessionmaker
from knowledge.errors import InvalidInput, NotFound
from knowledge.models import QueryLog, utcnow
from tests.bot.conftest import make_settings

SECRET = "test-secret-for-the-privacy-tests-0001"  # >= 32 characters (outside the demo)
PHONE = "13812345678"


@pytest.fixture
def url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def client(url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(url, secret_key=SECRET))) as c:
        yield c


def _citizen(client: TestClient, *, phone: str | None = PHONE, name: str | None = "王五") -> tuple[str, str]:
    """A widget conversation with two questions and a ticket; returns (widget user id, ticket no)."""
    token = client.post("/api/v1/sessions", json={}).json()["session"]
    for text in ("碳达峰的工作方案在哪里看", f"我的电话是{PHONE}，想问失业金"):
        assert client.post("/api/v1/chat", json={"session": token, "text": text}).status_code == 200
    resp = client.post(
        "/api/v1/tickets",
        json={
            "session": token,
            "question": "失业金怎么领",
            "name": name,
            "phone": phone,
            "consent": bool(name or phone),
        },
    )
    assert resp.status_code == 200, resp.text
    user_id = client.app.state.channels["web"].user_of(token)  # type: ignore[attr-defined]
    return user_id, resp.json()["ticket_no"]


def _count(sessions: sessionmaker[Session], model: Any, *where: Any) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_user_ref_hash_is_the_conversations(client: TestClient, sessions: sessionmaker[Session]) -> None:
    user_id, _ = _citizen(client)
    ref = user_ref_hash(SECRET, "web", user_id)
    assert _count(sessions, QueryLog, QueryLog.user_ref == ref) == 2


def test_export_by_phone_has_everything(client: TestClient, sessions: sessionmaker[Session]) -> None:
    user_id, no = _citizen(client)
    other_user, other_no = _citizen(client, phone="13900001111", name="赵六")
    client.app.state.channels["web"].push(user_id, Reply("status", f"您的留言 {no} 已有答复"))  # type: ignore[attr-defined]

    subject = resolve(sessions, phone="138-1234-5678")
    assert subject.users == (("web", user_id),)
    data = export_data(sessions, SECRET, subject, by="dpo")
    assert [t["no"] for t in data["tickets"]] == [no]
    ticket = data["tickets"][0]
    assert ticket["contact_phone"] == PHONE and ticket["contact_name"] == "王五"
    assert [e["action"] for e in ticket["events"]] == ["open"]
    assert len(data["query_log"]) == 2
    assert "138****5678" in data["query_log"][1]["text"]  # stored masked
    assert len(data["chat_sessions"]) == 1 and data["chat_sessions"][0]["user_id"] == user_id
    assert len(data["outbox"]) == 1
    assert other_no not in json.dumps(data, ensure_ascii=False) and other_user not in json.dumps(data)
    with sessions() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy_export")).one()
    assert audit.actor == "dpo" and audit.target == "phone" and audit.detail["tickets"] == [no]
    assert PHONE not in json.dumps(audit.detail)

    assert resolve(sessions, phone="13700000000").ticket_ids == ()  # nobody: an empty export, not an error
    with pytest.raises(NotFound):
        resolve(sessions, ticket="LY20990101-0001")
    with pytest.raises(InvalidInput):
        resolve(sessions, user="sms:123")
    with pytest.raises(InvalidInput):
        resolve(sessions, phone=PHONE, ticket=no)


def test_erase_by_ticket_removes_the_person_and_keeps_the_record(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    user_id, no = _citizen(client)
    other_user, other_no = _citizen(client, phone="13900001111", name="赵六")
    subject = resolve(sessions, ticket=no.lower())
    counts = preview(sessions, SECRET, subject)
    assert counts.tickets == (no,) and counts.query_log == 2 and counts.chat_sessions == 1

    done = erase_data(sessions, SECRET, subject, by="dpo")
    assert done.tickets == (no,) and done.query_log == 2 and done.chat_sessions == 1
    with sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.no == no)).one()
        assert (t.contact_name, t.contact_phone, t.user_ref) == (None, None, ERASED_REF)
        assert t.question == "失业金怎么领"
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy_erase")).one()
    assert audit.detail["tickets"] == [no] and audit.detail["query_log"] == 2
    assert user_id not in json.dumps(audit.detail) and PHONE not in json.dumps(audit.detail)
    assert _count(sessions, QueryLog, QueryLog.user_ref == user_ref_hash(SECRET, "web", user_id)) == 0
    assert _count(sessions, ChatSession, ChatSession.user_id == user_id) == 0
    # the other citizen is untouched
    assert _count(sessions, QueryLog, QueryLog.user_ref == user_ref_hash(SECRET, "web", other_user)) == 2
    assert _count(sessions, Ticket, Ticket.no == other_no, Ticket.contact_phone == "13900001111") == 1
    # the ticket now leads nowhere: a second request finds nothing left to erase
    assert preview(sessions, SECRET, resolve(sessions, ticket=no)).empty


def test_erase_wechat_user_clears_channel_rows(sessions: sessionmaker[Session], url: str) -> None:
    openid = "oAbCdEfGh_123"
    with sessions.begin() as s:
        s.add(
            AppValue(
                key=f"wechat:last_in:{openid}",
                value="2026-01-01T00:00:00",
                expires_at=utcnow() + dt.timedelta(hours=48),
            )
        )
        s.add(AppValue(key="wechat:last_in:oSomeoneElse", value="x", expires_at=utcnow()))
        s.add(InboundMessage(channel="wechat", msg_id=f"{openid}:1700000000:subscribe:", status="done"))
        s.add(InboundMessage(channel="wechat", msg_id="1234567890123", status="done"))
        s.add(ChatSession(channel="wechat", user_id=openid, state={"history": []}, updated_at=utcnow()))
        s.add(
            QueryLog(
                at=utcnow(),
                channel="wechat",
                user_ref=user_ref_hash(SECRET, "wechat", openid),
                text="问题",
                outcome="none",
            )
        )
    subject = resolve(sessions, user=f"wechat:{openid}")
    data = export_data(sessions, SECRET, subject)
    assert data["wechat_last_message"] == [{"user_id": openid, "last_message_at": "2026-01-01T00:00:00"}]
    done = erase_data(sessions, SECRET, subject)
    assert (done.wechat_rows, done.chat_sessions, done.query_log) == (2, 1, 1)
    assert _count(sessions, AppValue, AppValue.key.like("wechat:last_in:%")) == 1
    assert _count(sessions, InboundMessage) == 1


@pytest.fixture
def cli_env(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("POLICYBOT_SECRET_KEY", SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_privacy_commands(
    client: TestClient,
    sessions: sessionmaker[Session],
    cli_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id, no = _citizen(client)
    out = tmp_path / "export.json"
    assert cli.main(["privacy", "export", "--user-ref", f"web:{user_id}", "--out", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["tickets"][0]["no"] == no and data["tickets"][0]["contact_phone"] == PHONE
    assert out.stat().st_mode & 0o077 == 0  # personal data: owner-only file

    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert cli.main(["privacy", "erase", "--phone", PHONE]) == 2
    assert "已取消" in capsys.readouterr().err
    assert _count(sessions, Ticket, Ticket.contact_phone == PHONE) == 1

    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert cli.main(["privacy", "erase", "--phone", PHONE]) == 0
    assert "已删除" in capsys.readouterr().out
    assert _count(sessions, Ticket, Ticket.contact_phone == PHONE) == 0
    assert cli.main(["privacy", "erase", "--ticket", no, "--yes"]) == 0
    assert "未找到" in capsys.readouterr().out
    assert cli.main(["privacy", "export", "--user-ref", "nochannel"]) == 2


def test_retention_job(
    client: TestClient,
    sessions: sessionmaker[Session],
    url: str,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user_id, no = _citizen(client)
    client.app.state.tickets.reply(no, staff="li", text="请到社区事务受理服务中心办理。")  # type: ignore[attr-defined]
    client.app.state.tickets.close(no, by="li")  # type: ignore[attr-defined]
    now = utcnow()
    old = now - dt.timedelta(days=800)
    with sessions.begin() as s:
        s.add(QueryLog(at=old, channel="web", user_ref="x", text="很久以前的问题", outcome="none"))
        s.add(ChatSession(channel="web", user_id="w-old", state={}, updated_at=old))
        s.add(Outbox(channel="web", user_id="w-old", reply={"kind": "text", "text": "x"}, created_at=old))
        s.add(
            AccessLog(
                at=now - dt.timedelta(days=401),
                method="GET",
                path="/",
                status=200,
                duration_ms=1.0,
                ip="203.0.113.9",
            )
        )
        s.add(
            AccessLog(
                at=now - dt.timedelta(days=399),
                method="GET",
                path="/",
                status=200,
                duration_ms=1.0,
                ip="203.0.113.10",
            )
        )
        for n, (age, status) in enumerate(((401, "done"), (401, "running"), (399, "done"))):
            s.add(
                JobRun(
                    name="weekly_report",
                    period_key=f"old-{n}",
                    status=status,
                    worker="w",
                    attempts=1,
                    started_at=now - dt.timedelta(days=age),
                    detail="",
                )
            )
    settings = Settings(database_url=url)
    report = run_retention(settings, sessions, now)
    assert (report.query_log, report.chat_sessions, report.outbox, report.access_log) == (1, 1, 1, 1)
    assert report.job_runs == 1  # the old finished run; a running claim and a recent run stay
    assert report.contacts == ()  # closed just now: kept for 180 days
    assert (
        _count(sessions, QueryLog) == 2 and _count(sessions, ChatSession, ChatSession.user_id == user_id) == 1
    )
    assert _count(sessions, AccessLog, AccessLog.ip == "203.0.113.10") == 1

    later = run_retention(settings, sessions, now + dt.timedelta(days=181))
    assert later.contacts == (no,)
    assert run_retention(settings, sessions, now + dt.timedelta(days=181)).contacts == ()

    assert cli.main(["privacy", "purge", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["contacts"] == []


def test_retention_settings_validated() -> None:
    assert Settings().contact_retention_days == 180
    assert Settings().access_log_retention_days == 400
    with pytest.raises(ValueError):
        Settings(access_log_retention_days=30)
    with pytest.raises(ValueError):
        Settings(contact_retention_days=0)


def test_access_log_records_requests_without_query_strings(url: str, sessions: sessionmaker[Session]) -> None:
    app = create_app(make_settings(url, trusted_proxies=["127.0.0.1"]))
    with TestClient(app, client=("127.0.0.1", 50000)) as c:
        c.get("/healthz")
        c.get("/readyz")
        c.get("/api/v1/messages", params={"session": "secret-token"})
        c.post("/api/v1/chat", json={"text": "你好"}, headers={"X-Forwarded-For": "198.51.100.7"})
        assert "x-policybot-worker" not in c.get("/board").headers
    # closing the client ran the shutdown: queued rows are written
    with sessions() as s:
        rows = list(s.scalars(select(AccessLog).order_by(AccessLog.id)))
    assert [(r.method, r.path) for r in rows] == [
        ("GET", "/api/v1/messages"),
        ("POST", "/api/v1/chat"),
        ("GET", "/board"),
    ]
    assert rows[0].status == 403 and rows[1].status == 200
    assert all("secret-token" not in r.path for r in rows)
    assert rows[1].ip == "198.51.100.7" and rows[0].ip == "127.0.0.1"
    assert all(r.duration_ms >= 0 for r in rows)

    assert purge_access_log(sessions, utcnow() + dt.timedelta(seconds=1), batch=2) == 3
    assert _count(sessions, AccessLog) == 0


def test_worker_header_only_when_enabled(url: str) -> None:
    import os

    with TestClient(create_app(make_settings(url, expose_worker=True))) as c:
        assert c.get("/healthz").headers["x-policybot-worker"] == str(os.getpid())


def test_retention_runs_as_a_daily_job(url: str, sessions: sessionmaker[Session]) -> None:
    from bot.jobs import Scheduler
    from bot.privacy import RETENTION_JOB, register_retention_job

    old = utcnow() - dt.timedelta(days=731)
    with sessions.begin() as s:
        s.add(QueryLog(at=old, channel="web", user_ref="x", text="两年前的问题", outcome="none"))
    scheduler = Scheduler(sessions)
    register_retention_job(scheduler, Settings(database_url=url), sessions)
    other_worker = Scheduler(sessions)
    register_retention_job(other_worker, Settings(database_url=url), sessions)
    now = dt.datetime.now(dt.UTC)
    assert scheduler.run_due(now)[RETENTION_JOB] == "done"
    assert other_worker.run_due(now)[RETENTION_JOB] is None  # one worker per day
    assert _count(sessions, QueryLog) == 0


class _Outage:
    """A sessionmaker whose begin() fails while `down` is set (the database is unreachable)."""

    def __init__(self, real: sessionmaker[Session]) -> None:
        self.real = real
        self.down = True

    def begin(self) -> Any:
        if self.down:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT", {}, Exception("connection refused"))
        return self.real.begin()


def test_access_log_rows_wait_out_a_database_outage(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    from bot.accesslog import AccessLogWriter

    outage = _Outage(sessions)
    writer = AccessLogWriter(outage, batch=2, interval=3600)  # type: ignore[arg-type]
    for i in range(5):
        writer.add(
            {
                "at": utcnow(),
                "method": "GET",
                "path": f"/p{i}",
                "status": 200,
                "duration_ms": 1.0,
                "ip": "127.0.0.1",
            }
        )
    assert writer.flush() == 0 and writer.flush() == 0
    failures = [r for r in caplog.records if "access_log_write_failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None  # one line per outage, no traceback
    outage.down = False
    assert writer.flush() == 5
    writer.close()
    with sessions() as s:
        assert sorted(s.scalars(select(AccessLog.path))) == [f"/p{i}" for i in range(5)]
