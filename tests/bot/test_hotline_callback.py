"""The signed callback by which the hotline system returns its reply: it answers and closes the ticket,
the reply reaches the citizen on their own channel (the widget's message stream) through the outbox,
and an audit entry names the hotline; a bad signature, a stale timestamp and a replayed request are
refused with 401, an unknown ticket with 404, a second answer with 409, a bad body with 422, always
as JSON with a code."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import create_app
from handoff.models import AuditEntry
from tests.bot.conftest import delivered, make_settings

SECRET = "hotline-secret-of-at-least-32-chars!"
PATH = "/api/v1/hotline/callback"


def _headers(body: bytes, *, stamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Policybot-Timestamp": ts,
        "X-Policybot-Signature": f"sha256={mac}",
    }


def _body(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def _open(client: TestClient) -> tuple[str, str]:
    sid = client.post("/api/v1/sessions", json={}).json()["session"]
    r = client.post("/api/v1/tickets", json={"session": sid, "question": "失业金领完了还能续领吗"})
    assert r.status_code == 200, r.text
    return str(sid), str(r.json()["ticket_no"])


def _app(url: str, **overrides: object) -> FastAPI:
    return create_app(make_settings(url, hotline_secret=SECRET, outbox_enabled=False, **overrides))


def test_callback_answers_closes_pushes_and_audits(db_url: str) -> None:
    app = _app(db_url)
    with TestClient(app) as client:
        sid, no = _open(client)
        reply = "失业保险金领取期满后不能续领；如仍未就业，可申请临时救助。"
        body = _body(ticket_no=no, reply=reply, handler="王五", case_no="GD2026120200123")
        headers = _headers(body)
        r = client.post(PATH, content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"ticket_no": no, "status": "已办结", "duplicate": False}

        delivered(app)  # the citizen's message goes through the outbox like any staff reply
        msgs = client.get("/api/v1/messages", params={"session": sid, "after": 0}).json()["replies"]
        assert len(msgs) == 1 and reply in msgs[0]["text"] and no in msgs[0]["text"]

        ticket = app.state.tickets.get(no)
        assert ticket.status == "已办结" and ticket.reply == reply and ticket.replied_by == "12345"
        actions = [(e.action, e.actor) for e in app.state.tickets.events(no)]
        assert ("reply", "12345") in actions and ("close", "12345") in actions
        with app.state.sessions() as s:
            audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "hotline_reply")).all()
        assert [(a.actor, a.target, a.detail["handler"], a.detail["case_no"]) for a in audit] == [
            ("12345", no, "王五", "GD2026120200123")
        ]

        replay = client.post(PATH, content=body, headers=headers)
        assert replay.status_code == 401 and replay.json()["code"] == "replayed"
        retry = _headers(body, stamp=int(time.time()) + 1)  # a retry, signed anew a second later
        again = client.post(PATH, content=body, headers=retry)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        other = _body(ticket_no=no, reply="另一个答复", handler="赵六")
        conflict = client.post(PATH, content=other, headers=_headers(other))
        assert conflict.status_code == 409 and conflict.json()["code"] == "already_answered"
        delivered(app)
        assert len(client.get("/api/v1/messages", params={"session": sid, "after": 0}).json()["replies"]) == 1


def test_callback_refusals_are_json_with_codes(sqlite_url: str) -> None:
    app = _app(sqlite_url)
    with TestClient(app) as client:
        _, no = _open(client)
        body = _body(ticket_no=no, reply="答复", handler="王五")

        def post(content: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
            r = client.post(PATH, content=content, headers=headers)
            data = r.json()
            assert r.headers["content-type"].startswith("application/json") and data["detail"]
            return r.status_code, data["code"], data["detail"]

        assert post(body, {"Content-Type": "application/json"})[:2] == (401, "stale_timestamp")
        assert post(body, _headers(body, secret="another-secret-of-32-characters!!"))[:2] == (
            401,
            "bad_signature",
        )
        tampered = _headers(body)
        assert post(_body(ticket_no=no, reply="篡改", handler="王五"), tampered)[:2] == (401, "bad_signature")
        assert post(body, _headers(body, stamp=int(time.time()) - 301))[:2] == (401, "stale_timestamp")
        assert post(body, _headers(body, stamp=int(time.time()) + 301))[:2] == (401, "stale_timestamp")
        unknown = _body(ticket_no="LY20200101-0009", reply="答复", handler="王五")
        status, code, detail = post(unknown, _headers(unknown))
        assert (status, code) == (404, "unknown_ticket") and "LY20200101-0009" in detail
        for bad in (
            b"{not json",
            _body(ticket_no=no, handler="王五"),
            _body(ticket_no=no, reply="", handler="x"),
        ):
            status, code, detail = post(bad, _headers(bad))
            assert (status, code) == (422, "bad_body") and "请求内容不正确" in detail
        assert app.state.tickets.get(no).status == "待受理", "nothing was applied"
        ok = client.post(PATH, content=body, headers=_headers(body))
        assert ok.status_code == 200 and ok.json()["status"] == "已办结"


def test_callback_disabled_without_secret_and_documented(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    with TestClient(app) as client:
        body = _body(ticket_no="LY20261202-0001", reply="答复", handler="王五")
        r = client.post(PATH, content=body, headers=_headers(body))
        assert r.status_code == 404 and r.json()["code"] == "disabled"
        op = client.get("/openapi.json").json()["paths"][PATH]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert {"ticket_no", "reply", "handler"} <= set(schema["required"]) and schema["examples"]
    assert {"200", "401", "404", "409", "422"} <= set(op["responses"])
