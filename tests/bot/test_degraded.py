"""Degraded mode with the database really gone (its file moved away, the pool emptied): answers
still come, a message left on the web form or in a text conversation is spooled, and when the
database is back each becomes exactly one ticket whose number reaches the citizen's channel."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.memory import MemoryChannel
from bot.conversation import TICKET_QUEUED
from handoff.models import Ticket
from knowledge.models import QueryLog
from tests.bot.conftest import make_settings


@contextmanager
def database_away(app: FastAPI, url: str) -> Iterator[None]:
    """The SQLite file cannot be opened: every new connection fails with OperationalError."""
    path = Path(url.removeprefix("sqlite:///"))
    app.state.engine.dispose()
    moved = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    for p in moved:
        os.rename(p, f"{p}.away")
    path.mkdir()  # opening a directory as a database fails (no empty database is created)
    try:
        yield
    finally:
        shutil.rmtree(path)
        for p in moved:
            os.rename(f"{p}.away", p)


def _tickets(app: FastAPI) -> list[Ticket]:
    with app.state.sessions() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def test_messages_left_during_an_outage_become_tickets_when_it_ends(demo_url: str) -> None:
    app = create_app(make_settings(demo_url))
    client = TestClient(app)  # no lifespan: this test runs the spool's replay itself
    session = client.post("/api/v1/sessions", json={}).json()["session"]
    text_user = MemoryChannel(app.state.inbox, "wx-user")
    app.state.outbox.channels["memory"] = text_user  # pushes to the text conversation land here
    text_user.ask("我家楼下的共享单车乱停放谁来管")
    spool = app.state.spool
    with app.state.sessions() as s:
        logged_before = s.scalar(select(func.count()).select_from(QueryLog))

    with database_away(app, demo_url):
        # answers come from memory
        chat = client.post("/api/v1/chat", json={"session": session, "text": "依申请公开多长时间答复"})
        assert chat.status_code == 200 and chat.json()["replies"][0]["kind"] == "answer"
        # the web form: received, numbered later; a resubmission with the same key changes nothing
        body = {
            "session": session,
            "question": "小区路灯坏了找哪个部门",
            "name": "张三",
            "phone": "13812345678",
            "consent": True,
            "idempotency_key": "w-outage-1",
        }
        for _ in range(2):
            queued = client.post("/api/v1/tickets", json=body)
            assert queued.status_code == 202, queued.text
            assert queued.json()["queued"] is True and queued.json()["ticket_no"] is None
            assert queued.json()["text"] == TICKET_QUEUED
        # a text conversation (WeChat, Telegram) keeps its state in memory across the steps
        assert "描述" in text_user.say("留言")
        assert "同意" in text_user.say("公共自行车停放管理归哪个部门")
        assert text_user.say("匿名") == TICKET_QUEUED
        assert text_user.say("匿名") != TICKET_QUEUED  # the offer is over: no second request
        assert spool.pending_files()
        spooled = b"".join(p.read_bytes() for p in spool.pending_files())
        assert oct(os.stat(spool.pending_files()[0]).st_mode & 0o777) == "0o600"  # contact data inside
        assert b"13812345678" in spooled

    assert _tickets(app) == []
    spool.replay()
    assert not spool.pending_files()
    tickets = _tickets(app)
    assert sorted(t.channel for t in tickets) == ["memory", "web"]  # one per request, not per attempt
    web = next(t for t in tickets if t.channel == "web")
    assert web.question == "小区路灯坏了找哪个部门" and web.contact_phone and web.consent_at
    assert web.idempotency_key == "w-outage-1"
    text_ticket = next(t for t in tickets if t.channel == "memory")
    assert text_ticket.question == "公共自行车停放管理归哪个部门" and text_ticket.user_ref == "wx-user"
    # the numbers reach each citizen on their own channel, through the outbox
    assert app.state.outbox.drain() == 2
    pushed = client.get("/api/v1/messages", params={"session": session}).json()["replies"]
    assert any(web.no in m["text"] and "系统维护期间" in m["text"] for m in pushed)
    assert [r.ticket_no for _, r in text_user.pushed] == [text_ticket.no]
    # the questions asked during the outage reached the query log (the gaps report)
    with app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(QueryLog)) > logged_before
    # a replay run twice (e.g. cut short after opening the tickets) opens nothing new
    assert spool.replay() == 0 and len(_tickets(app)) == 2
    # and the conversation goes on from the database again
    assert re.search(r"LY\d{8}-\d{4}", text_user.say(f"查询 {text_ticket.no}"))
