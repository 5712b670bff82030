"""The 12345 webhook: each new ticket reaches a fake hotline system (a real HTTP server on 127.0.0.1)
exactly once, through the durable outbox, with an HMAC-SHA256 signature the test checks on its own;
while the endpoint answers 500 the row waits with a growing delay, and it is delivered after the
endpoint recovers. A 4xx stops the retries; a webhook URL without a secret refuses to start."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.privacy import erase_data, resolve
from knowledge.errors import PolicybotError
from tests.bot.conftest import make_settings
from tests.fakes.hotline_api import FakeHotline, Received
from tests.fakes.server import serve

SECRET = "hotline-secret-of-at-least-32-chars!"


@pytest.fixture
def hotline() -> Iterator[tuple[FakeHotline, str]]:
    fake = FakeHotline()
    with serve(fake.app()) as base:
        yield fake, f"{base}/hook"


def _app(url: str, hook: str, **overrides: object) -> FastAPI:
    return create_app(
        make_settings(
            url,
            hotline_webhook_url=hook,
            hotline_secret=SECRET,
            public_base_url="https://zhengce.example.gov.cn",
            outbox_enabled=False,  # the test drains by hand, so every attempt is its own step
            **overrides,
        )
    )


def _session(client: TestClient) -> str:
    return str(client.post("/api/v1/sessions", json={}).json()["session"])


def _ticket(client: TestClient, question: str, key: str, sid: str | None = None) -> str:
    sid = sid or _session(client)
    body = {
        "session": sid,
        "question": question,
        "name": "李四",
        "phone": "13812345678",
        "consent": True,
        "idempotency_key": key,
    }
    r = client.post("/api/v1/tickets", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["ticket_no"])


def _check_signature(got: Received) -> dict[str, object]:
    """The receiver's side, written from the README: sha256=HMAC(secret, "<timestamp>." + body)."""
    stamp = got.headers["x-policybot-timestamp"]
    assert abs(time.time() - int(stamp)) < 60
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-policybot-signature"] == f"sha256={expected}"
    assert got.headers["x-policybot-event"] == "ticket.created"
    assert got.headers["content-type"].startswith("application/json")
    return dict(json.loads(got.body))


def test_each_ticket_reaches_the_hotline_once_signed_and_retried_with_backoff(
    db_url: str, hotline: tuple[FakeHotline, str]
) -> None:
    fake, hook = hotline
    fake.status = 500  # the hotline is down
    app = _app(db_url, hook, push_backoff_seconds=0.4)
    outbox = app.state.outbox
    with TestClient(app) as client:
        sid = _session(client)
        no = _ticket(client, "失业金领完了还能续领吗？电话13812345678", "k-1", sid)
        rows = outbox.rows()
        assert [(r.kind, r.channel, r.status) for r in rows] == [("hotline_ticket", "hotline", "pending")]

        assert outbox.drain() == 0 and fake.count() == 1
        row = outbox.rows()[0]
        assert row.status == "pending" and row.attempts == 1 and "500" in (row.last_error or "")
        first_wait = (row.next_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()
        assert 0.1 < first_wait <= 0.4
        assert outbox.drain() == 0 and fake.count() == 1, "no new attempt before the backoff has passed"

        time.sleep(0.45)
        assert outbox.drain() == 0 and fake.count() == 2
        row = outbox.rows()[0]
        second_wait = (row.next_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()
        assert second_wait > first_wait, "the delay doubles"

        fake.status = 200  # back up
        assert outbox.drain() == 0 and fake.count() == 2
        time.sleep(0.85)
        assert outbox.drain() == 1 and fake.count() == 3
        assert outbox.rows()[0].status == "sent"
        assert outbox.drain() == 0 and fake.count() == 3, "sent once"

        assert _ticket(client, "失业金领完了还能续领吗？电话13812345678", "k-1", sid) == no  # retried form
        other = _ticket(client, "灵活就业人员怎么交社保", "k-2")
        outbox.drain()
    assert fake.count() == 4
    bodies = [_check_signature(r) for r in fake.received]
    assert [b["ticket_no"] for b in bodies] == [no, no, no, other]
    assert len({r.body for r in fake.received[:3]}) == 1, "a retry sends the same event"
    event = bodies[0]
    assert event["event"] == "ticket.created" and event["event_id"] == f"hotline_ticket:{no}"
    assert event["contact"] == {"name": "李*", "phone": "138****5678"}
    assert (
        "13812345678" not in fake.received[0].body.decode() and "李四" not in fake.received[0].body.decode()
    )
    assert "138****5678" in str(event["question"])
    assert event["callback_url"] == "https://zhengce.example.gov.cn/api/v1/hotline/callback"
    assert event["department"] and event["category"] == "咨询" and event["channel"] == "web"
    assert str(event["created_at"]).endswith("+08:00") and event["due_date"]


def test_contact_setting_and_a_refusing_hotline(sqlite_url: str, hotline: tuple[FakeHotline, str]) -> None:
    fake, hook = hotline
    fake.status = 400  # refused: no retry can fix it
    app = _app(sqlite_url, hook, hotline_contact="none")
    with TestClient(app) as client:
        _ticket(client, "失业金领完了还能续领吗", "k-1")
        app.state.outbox.drain()
        app.state.outbox.drain()
        row = app.state.outbox.rows()[0]
    assert fake.count() == 1 and row.status == "impossible" and "HTTP 400" in (row.last_error or "")
    assert _check_signature(fake.received[0])["contact"] is None


def test_too_many_requests_is_retried(sqlite_url: str, hotline: tuple[FakeHotline, str]) -> None:
    fake, hook = hotline
    fake.status = 429
    app = _app(sqlite_url, hook, hotline_contact="clear", push_backoff_seconds=0.2)
    with TestClient(app) as client:
        _ticket(client, "失业金领完了还能续领吗", "k-1")
        app.state.outbox.drain()
        assert app.state.outbox.rows()[0].status == "pending"
        fake.status = 204
        time.sleep(0.25)
        app.state.outbox.drain()
        assert app.state.outbox.rows()[0].status == "sent"
    assert fake.count() == 2
    assert _check_signature(fake.received[1])["contact"] == {"name": "李四", "phone": "13812345678"}


def test_no_webhook_no_rows_and_url_without_secret_refused(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, outbox_enabled=False))
    with TestClient(app) as client:
        _ticket(client, "失业金领完了还能续领吗", "k-1")
    assert app.state.outbox.rows() == []
    with pytest.raises(PolicybotError, match="POLICYBOT_HOTLINE_SECRET"):
        create_app(make_settings(sqlite_url, hotline_webhook_url="https://hotline.example.gov.cn/hook"))


def test_webhook_payload_is_in_the_openapi_document(sqlite_url: str) -> None:
    spec = create_app(make_settings(sqlite_url)).openapi()
    hook = spec["webhooks"]["hotline-ticket-created"]["post"]
    ref = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"ticket_no", "created_at", "department", "category", "question", "callback_url"} <= set(
        schema["properties"]
    )
    assert schema["examples"][0]["ticket_no"].startswith("LY")
    headers = {p["name"] for p in hook["parameters"]}
    assert {"X-Policybot-Signature", "X-Policybot-Timestamp"} <= headers


def test_erasing_the_citizen_removes_an_unsent_webhook_row(
    sqlite_url: str, hotline: tuple[FakeHotline, str]
) -> None:
    fake, hook = hotline
    app = _app(sqlite_url, hook, hotline_contact="clear")
    with TestClient(app) as client:
        no = _ticket(client, "失业金领完了还能续领吗", "k-1")
        assert [r.user_id for r in app.state.outbox.rows()] == [no]
        sessions = app.state.sessions
        erase_data(sessions, "test-secret-of-32-characters-000000", resolve(sessions, phone="13812345678"))
        assert app.state.outbox.rows() == []
        app.state.outbox.drain()
    assert fake.count() == 0
