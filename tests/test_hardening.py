"""Security issue 11 regressions: a transfer with a cold holiday cache (no nested SQLite write
connection, no busy-timeout freeze), transfers only to active departments, clear 4xx instead of 500s
(a non-ASCII X-API-Key, cursors and ids of 2**63, a deeply nested JSONL line on `kb import`), a
query-log entry that survives a failed write, owner-only SQLite files, and the length of
POLICYBOT_SECRET_KEY / POLICYBOT_API_KEY outside the demo."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot import cli
from bot.app import create_app
from bot.channels.memory import MemoryChannel
from bot.database import upgrade
from bot.settings import Settings, get_settings
from handoff.models import Department
from handoff.sla import WorkCalendar
from handoff.tickets import PENDING, TicketService
from knowledge.db import make_engine, make_sessionmaker
from knowledge.errors import InvalidInput
from knowledge.models import QueryLog
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.bot.test_degraded import database_away
from tests.handoff.console_helpers import ORIGIN, accounts, csrf, make_users, signed_in

BIG = 2**63  # one past the largest BIGINT / SQLite INTEGER
# a Friday: a 20-working-day limit from it reaches into 2027 (no package data, no table rows)
FRIDAY = dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC)
LONG_KEY = "k" * 32


# --- item 5: transfers ---------------------------------------------------------------------------


class NestingProbe:
    """Counts transactions open at the same time in one thread (a nested write connection)."""

    def __init__(self, engine: Engine) -> None:
        self._local = threading.local()
        self.deepest = 0
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, _conn: Any) -> None:
        depth = getattr(self._local, "depth", 0) + 1
        self._local.depth = depth
        self.deepest = max(self.deepest, depth)

    def _end(self, _conn: Any) -> None:
        self._local.depth = max(0, getattr(self._local, "depth", 0) - 1)


@pytest.fixture
def quick_engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine whose SQLite busy timeout is 2 s: a nested write connection fails fast."""
    eng = (
        make_engine(db_url, connect_args={"timeout": 2})
        if db_url.startswith("sqlite")
        else make_engine(db_url)
    )
    upgrade(eng)
    yield eng
    eng.dispose()


def _departments(sessions: sessionmaker[Session], **names: bool) -> None:
    with sessions.begin() as s:
        for name, active in names.items():
            s.add(Department(name=name, active=active))


def test_transfer_with_a_cold_holiday_cache_opens_no_nested_write(quick_engine: Engine) -> None:
    sessions = make_sessionmaker(quick_engine)
    # cache_seconds=0: every calendar lookup reads the holiday table, as a cold cache does
    calendar = WorkCalendar(sessions, cache_seconds=0)
    service = TicketService(sessions, calendar, limits={"市人社局": 20}, clock=lambda: FRIDAY)
    _departments(sessions, 市人社局=True, 政务公开办公室=True)
    probe = NestingProbe(quick_engine)
    t = service.open(question="灵活就业社保补贴怎么申请？", channel="web", user_ref="u1")
    started = time.monotonic()
    t = service.transfer(t.no, to_department="市人社局", reason="属人社职责", by="li")
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"transfer took {elapsed:.1f} s (waited for the busy timeout)"
    assert (t.status, t.department) == (PENDING, "市人社局")
    assert t.due_date == calendar.add_working_days(dt.date(2026, 12, 11), 20).day
    assert t.due_warnings and "2027" in t.due_warnings[0]  # unknown year: weekends only, with a warning
    # every other change of the lifecycle, too: never a second transaction inside the first
    t = service.assign(t.no, staff="wang")
    t = service.reply(t.no, staff="wang", text="请向街道社区事务受理中心申请。")
    t = service.reopen(t.no, by="wang", reason="市民补充材料")
    t = service.transfer(t.no, to_department="政务公开办公室", reason="退回", by="wang")
    service.close(t.no, by="wang", reason="重复留言")
    assert probe.deepest == 1


def test_transfer_only_to_an_active_department(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    service = TicketService(sessions, WorkCalendar(sessions), clock=lambda: FRIDAY)
    _departments(sessions, 市医保局=True, 已撤并局=False)
    t = service.open(question="医保报销比例是多少？", channel="web", user_ref="u2")
    with pytest.raises(InvalidInput) as unknown:
        service.transfer(t.no, to_department="不存在的局", reason="x", by="li")
    assert "不存在的局" in unknown.value.user_message and "部门" in unknown.value.user_message
    with pytest.raises(InvalidInput) as inactive:
        service.transfer(t.no, to_department="已撤并局", reason="x", by="li")
    assert "停用" in inactive.value.user_message
    assert service.get(t.no).department == t.department and service.get(t.no).version == t.version
    assert (
        service.transfer(t.no, to_department=" 市医保局 ", reason="属医保职责", by="li").department
        == "市医保局"
    )


# --- item 7: clear 4xx instead of 500 ------------------------------------------------------------


@pytest.fixture
def keyed_app(demo_url: str) -> FastAPI:  # noqa: F811
    return create_app(make_settings(demo_url, api_key=LONG_KEY))


def test_non_ascii_api_key_is_refused_not_a_500(keyed_app: FastAPI) -> None:
    client = TestClient(keyed_app)
    r = client.get("/api/v1/faqs", headers={"X-API-Key": "密钥".encode()})
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = client.get("/api/v1/faqs", headers={"X-API-Key": ("é" * 32).encode("latin-1")})
    assert r.status_code == 401
    assert client.get("/api/v1/faqs", headers={"X-API-Key": LONG_KEY}).status_code == 200


def test_huge_cursors_are_422_in_chinese(keyed_app: FastAPI) -> None:
    client = TestClient(keyed_app)
    session = client.post("/api/v1/sessions", json={}).json()["session"]
    for path, params, headers in [
        ("/api/v1/faqs", {"since": str(BIG)}, {"X-API-Key": LONG_KEY}),
        ("/api/v1/faqs", {"since": "9" * 40}, {"X-API-Key": LONG_KEY}),
        ("/api/v1/messages", {"session": session, "after": str(BIG)}, {}),
    ]:
        r = client.get(path, params=params, headers=headers)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["detail"].startswith("请求格式不正确"), r.text
    r = client.post("/api/v1/rate", json={"session": session, "ref": str(BIG), "rating": "useful"})
    assert r.status_code == 200 and r.json()["ok"] is False
    largest = str(BIG - 1)
    assert (
        client.get("/api/v1/faqs", params={"since": largest}, headers={"X-API-Key": LONG_KEY}).status_code
        == 200
    )
    r = client.get("/api/v1/messages", params={"session": session, "after": largest})
    assert r.status_code == 200 and r.json()["replies"] == []


def test_huge_console_ids_are_a_400_page(keyed_app: FastAPI) -> None:
    make_users(keyed_app, "政务公开办公室")
    admin = signed_in(keyed_app, "admin")
    token = csrf(admin)
    for path in (
        f"/console/admin/users/{BIG}",
        f"/console/admin/users/{BIG}/password",
        f"/console/admin/departments/{BIG}",
        f"/console/admin/templates/{BIG}",
        f"/console/admin/templates/{BIG}/delete",
    ):
        r = admin.post(
            path,
            headers=ORIGIN,
            data={
                "csrf": token,
                "active": "1",
                "title": "t",
                "body": "b",
                "password": "Another-pass-2026",
                "role": "staff",
            },
            follow_redirects=False,
        )
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[-300:])
    alice_ticket = keyed_app.state.tickets.open(question="路灯坏了找谁？", channel="web", user_ref="u3")
    sue = signed_in(keyed_app, "sue")
    r = sue.post(
        f"/console/tickets/{alice_ticket.no}/assign",
        headers=ORIGIN,
        data={"csrf": csrf(sue), "version": str(BIG)},
        follow_redirects=False,
    )
    assert r.status_code == 400


@pytest.fixture
def run_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


def test_kb_import_of_a_deeply_nested_jsonl_line(run_cli: Any, tmp_path: Path) -> None:
    good = json.dumps(
        {"id": "n1", "question": "社保卡怎么补办", "answer": "带身份证到服务网点。"}, ensure_ascii=False
    )
    deep = '{"id": "n2", "question": "x", "answer": ' + "[" * 200_000 + "]" * 200_000 + "}"
    nested = '{"id": "n3", "question": "y", "answer": "z", "tags": ' + "[" * 50 + "]" * 50 + "}"
    path = tmp_path / "faq.jsonl"
    path.write_text("\n".join([good, deep, nested]) + "\n", encoding="utf-8")
    code, _, err = run_cli("kb", "import", str(path))
    assert code == 2, err
    assert "第2行" in err and "嵌套" in err
    assert "第3行" in err
    whole = tmp_path / "faq.json"
    whole.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    code, _, err = run_cli("kb", "import", str(whole))
    assert code == 2 and "嵌套" in err, err


# --- item 8: the query log, file modes, key lengths -----------------------------------------------


def test_query_log_entry_survives_a_write_that_fails(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    app = create_app(make_settings(demo_url))
    dialogue = app.state.dialogue
    question = "依申请公开多长时间答复"
    user = MemoryChannel(app.state.inbox, "ql-user")
    user.ask("你好")  # the conversation state exists: the next message reads it from the database

    def count() -> int:
        with app.state.sessions() as s:
            return int(
                s.scalar(select(func.count()).select_from(QueryLog).where(QueryLog.text == question)) or 0
            )

    before = count()
    real_dispatch = dialogue._dispatch
    with ExitStack() as away:

        def dispatch_then_lose_the_database(msg: Any, state: dict[str, Any]) -> Any:
            replies = real_dispatch(msg, state)  # the state was read; now the database goes away
            away.enter_context(database_away(app, demo_url))
            return replies

        monkeypatch.setattr(dialogue, "_dispatch", dispatch_then_lose_the_database)
        replies = user.ask(question)
        assert replies and replies[0].kind == "answer" and replies[0].ref is None  # no id of a lost row
        assert app.state.spool.pending_files()
    monkeypatch.undo()
    app.state.spool.replay()
    assert count() == before + 1
    assert app.state.spool.replay() == 0 and count() == before + 1  # exactly once


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def test_sqlite_database_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "fresh.db"
        eng = make_engine(f"sqlite:///{path}")
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            for suffix in ("", "-wal", "-shm"):
                assert _mode(Path(f"{path}{suffix}")) == 0o600, suffix
        eng.dispose()
        # files left readable by an earlier version are tightened when the service opens them
        loose = tmp_path / "loose.db"
        first = make_engine(f"sqlite:///{loose}")
        with first.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.commit()
            for suffix in ("", "-wal", "-shm"):
                os.chmod(f"{loose}{suffix}", 0o644)
            second = make_engine(f"sqlite:///{loose}")
            with second.connect() as conn2:
                conn2.execute(text("SELECT count(*) FROM t"))
                for suffix in ("", "-wal", "-shm"):
                    assert _mode(Path(f"{loose}{suffix}")) == 0o600, suffix
            second.dispose()
        first.dispose()
    finally:
        os.umask(old)


def _settings(**values: Any) -> Settings:
    return Settings(**values)


@pytest.mark.parametrize("field", ["secret_key", "api_key"])
def test_short_keys_are_refused_outside_the_demo(field: str) -> None:
    with pytest.raises(ValidationError) as short:
        _settings(demo=False, **{field: "k" * 31})
    assert f"POLICYBOT_{field.upper()}" in str(short.value) and "32" in str(short.value)
    assert "k" * 31 not in str(short.value)  # the key itself is not echoed
    assert getattr(_settings(demo=False, **{field: LONG_KEY}), field) == LONG_KEY
    assert getattr(_settings(demo=False, **{field: ""}), field) is None  # unset (compose passes "")
    assert getattr(_settings(demo=True, **{field: "demo"}), field) == "demo"


def test_cli_refuses_a_short_secret_key(run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYBOT_SECRET_KEY", "short")
    get_settings.cache_clear()
    code, _, err = run_cli("kb", "demo")
    assert code == 2 and "POLICYBOT_SECRET_KEY" in err and "32" in err and "Traceback" not in err


def test_console_offers_only_active_departments_for_transfer(keyed_app: FastAPI) -> None:
    make_users(keyed_app, "政务公开办公室")
    acc = accounts(keyed_app)
    acc.add_department("市医保局")
    acc.set_department_active(acc.add_department("已撤并局").id, False)
    t = keyed_app.state.tickets.open(question="医保怎么报销？", channel="web", user_ref="u4")
    page = signed_in(keyed_app, "sue").get(f"/console/tickets/{t.no}").text
    options = re.findall(
        r'<option value="([^"]+)">', page.split('name="department"', 1)[1].split("</select>")[0]
    )
    assert options == ["市医保局"]
