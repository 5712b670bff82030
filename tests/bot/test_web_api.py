"""The /api/v1 surface the widget and other systems use."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from tests.bot.conftest import delivered, make_settings

API_KEY = "sync-key-of-at-least-32-characters"  # >= 32 characters, as outside the demo


def start(client: TestClient) -> str:
    r = client.post("/api/v1/sessions", json={})
    assert r.status_code == 200
    body = r.json()
    assert body["replies"][0]["suggestions"], "welcome lists the most asked questions"
    return str(body["session"])


def test_chat_answer_with_sources_and_rating(client: TestClient) -> None:
    sid = start(client)
    r = client.post("/api/v1/chat", json={"session": sid, "text": "依申请公开多长时间答复"})
    assert r.status_code == 200
    reply = r.json()["replies"][0]
    assert reply["kind"] == "answer" and "工作日" in reply["text"]
    assert reply["sources"][0]["article"] == "二(二)" and reply["ref"]
    ok = client.post("/api/v1/rate", json={"session": sid, "ref": reply["ref"], "rating": "useful"}).json()
    assert ok["ok"] is True
    again = client.post(
        "/api/v1/rate", json={"session": sid, "ref": reply["ref"], "rating": "useless"}
    ).json()
    assert again["ok"] is False  # once only
    other = start(client)
    assert (
        client.post("/api/v1/rate", json={"session": other, "ref": reply["ref"], "rating": "useful"}).json()[
            "ok"
        ]
        is False
    )


def test_null_session_creates_one(client: TestClient) -> None:
    r = client.post("/api/v1/chat", json={"session": None, "text": "你好"})
    assert r.status_code == 200 and r.json()["session"]


def test_forged_session_rejected(client: TestClient) -> None:
    r = client.post("/api/v1/chat", json={"session": "forged.token.value", "text": "你好"})
    assert r.status_code == 403 and "会话" in r.json()["detail"]


def test_ticket_form_consent_status_and_push(client: TestClient, app: FastAPI) -> None:
    sid = start(client)
    client.post("/api/v1/chat", json={"session": sid, "text": "公园里的流浪猫归哪个部门管"})
    refused = client.post(
        "/api/v1/tickets", json={"session": sid, "question": "流浪猫归谁管", "phone": "13812345678"}
    )
    assert refused.status_code == 422 and "同意" in refused.json()["detail"]
    body = {
        "session": sid,
        "question": "流浪猫归谁管",
        "name": "李四",
        "phone": "13812345678",
        "consent": True,
        "idempotency_key": "k-1",
    }
    r = client.post("/api/v1/tickets", json=body)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["ticket_no"].startswith("LY") and t["status"] == "待受理" and t["due_date"]
    assert client.post("/api/v1/tickets", json=body).json()["ticket_no"] == t["ticket_no"]  # idempotent retry
    own = client.get(f"/api/v1/tickets/{t['ticket_no']}", params={"session": sid})
    assert own.status_code == 200 and own.json()["reply"] is None
    assert (
        client.get(f"/api/v1/tickets/{t['ticket_no']}", params={"session": start(client)}).status_code == 404
    )
    # staff reply is pushed to the widget's message stream
    app.state.tickets.reply(t["ticket_no"], staff="staff1", text="由区绿化市容局负责，请拨打12345。")
    delivered(app)  # the outbox writes it to the widget's mailbox
    msgs = client.get("/api/v1/messages", params={"session": sid, "after": 0}).json()
    assert msgs["cursor"] > 0 and "绿化市容局" in msgs["replies"][0]["text"]
    assert (
        client.get("/api/v1/messages", params={"session": sid, "after": msgs["cursor"]}).json()["replies"]
        == []
    )


def test_oversized_and_malformed_requests(client: TestClient) -> None:
    big = client.post(
        "/api/v1/chat",
        content=b'{"session": null, "text": "' + b"a" * 70000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    bad = client.post("/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "请求格式不正确" in bad.json()["detail"]
    missing = client.post("/api/v1/chat", json={"session": None})
    assert missing.status_code == 422


def test_rate_limit_per_session(demo_url: str) -> None:
    app = create_app(make_settings(demo_url, rate_limit_per_session=3))
    with TestClient(app) as client:
        sid = start(client)
        codes = [
            client.post("/api/v1/chat", json={"session": sid, "text": "你好"}).status_code for _ in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = client.post("/api/v1/chat", json={"session": sid, "text": "你好"})
        assert int(r.headers["Retry-After"]) >= 1


def test_rate_limit_per_ip_trusts_forwarded_for_only_from_proxies(demo_url: str) -> None:
    app = create_app(make_settings(demo_url, rate_limit_per_ip=2, trusted_proxies=["127.0.0.1"]))
    with TestClient(app) as client:
        # the peer "testclient" is not an IP, so it is not trusted: X-Forwarded-For is ignored
        codes = [
            client.post("/api/v1/sessions", json={}, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]


def test_faq_sync_needs_api_key(demo_url: str) -> None:
    app = create_app(make_settings(demo_url, api_key=API_KEY))
    with TestClient(app) as client:
        assert client.get("/api/v1/faqs").status_code == 401
        full = client.get("/api/v1/faqs", headers={"X-API-Key": API_KEY}).json()
        assert len(full["faqs"]) >= 40 and full["version"] > 0
        assert (
            client.get(
                "/api/v1/faqs", params={"since": full["version"]}, headers={"X-API-Key": API_KEY}
            ).json()["faqs"]
            == []
        )


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["database"] is True and ready["faqs_indexed"] >= 40
    assert "/api/v1/chat" in client.get("/openapi.json").json()["paths"]


def test_workers_share_one_generated_secret(demo_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from bot.app import shared_secret
    from knowledge.db import make_engine, make_sessionmaker

    settings = make_settings(demo_url, secret_key=None)
    sessions = make_sessionmaker(make_engine(demo_url))
    with ThreadPoolExecutor(4) as pool:
        secrets = set(pool.map(lambda _: shared_secret(settings, sessions), range(8)))
    assert len(secrets) == 1 and len(secrets.pop()) >= 40
