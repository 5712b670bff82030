"""Scale-out proof: `policybot serve --workers 2` on a fresh PostgreSQL database, driven over real
HTTP on new connections so that both worker processes serve the same citizen.

(a) A widget conversation continues across workers: a clarify question answered by one worker and
the numbered choice ("1") by the other, and WeChat's 留言 → 取消 with the pending state carried.
(b) A WeChat retry (same MsgId) that reaches the other worker is deduplicated: the same reply and one
query-log entry. The widget session id signed by one worker is accepted by the other, so the
generated secret key is shared too. Workers are told apart by the X-Policybot-Worker header
(POLICYBOT_EXPOSE_WORKER=1). (c) Telegram: each worker runs python-telegram-bot on its own event
loop; updates reaching either worker are answered once, a redelivered update once in all.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy import create_engine, make_url, text
from wechatpy.crypto import WeChatCrypto
from wechatpy.parser import parse_message
from wechatpy.utils import WeChatSigner

from knowledge.db import normalise_url
from tests.conftest import HAS_PG, PG_URL, pg_admin
from tests.fakes.server import serve as serve_fake
from tests.fakes.telegram_api import FakeTelegramState, create_fake_telegram
from tests.serving import clean_env, serve

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = os.environ.get("POLICYBOT_REQUIRE_POSTGRES") == "1"  # set by .ci/run: a skip would hide a gap

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_PG and not REQUIRED,
        reason="needs DATABASE_URL naming a PostgreSQL server (creates a database there)",
    ),
]

TOKEN = "multiWorkerToken"
AES_KEY = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")
APP_ID = "wx0123456789abcdef"
ACCOUNT = "gh_multiworker01"
OPENID = "oMultiWorkerUser0001"
MAX_TRIES = 120
TG_SECRET = "multiWorkerTelegramSecret"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A new PostgreSQL database on DATABASE_URL's server, dropped afterwards."""
    if not HAS_PG:
        pytest.fail("POLICYBOT_REQUIRE_POSTGRES=1 but DATABASE_URL does not name a PostgreSQL server")
    name = f"policybot_mw_{uuid.uuid4().hex[:10]}"
    with pg_admin(f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'):
        yield make_url(normalise_url(PG_URL)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[tuple[str, FakeTelegramState]]:
    """A fake Bot API on loopback for the server's Telegram channel (every worker talks to it)."""
    app = create_fake_telegram()
    with serve_fake(app) as url:
        yield url, app.state.fake


@pytest.fixture(scope="module")
def server(
    database: str, fake_telegram: tuple[str, FakeTelegramState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of `policybot serve --workers 2` with the demo KB, WeChat and
    Telegram enabled (one server for this module's tests)."""
    tmp_path = tmp_path_factory.mktemp("multiworker")
    tg_url, tg = fake_telegram
    env = clean_env(
        **{
            "DATABASE_URL": database,
            "POLICYBOT_TELEGRAM_TOKEN": tg.token,
            "POLICYBOT_TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "POLICYBOT_TELEGRAM_API_BASE": tg_url,
            "POLICYBOT_EXPOSE_WORKER": "1",
            "POLICYBOT_WECHAT_TOKEN": TOKEN,
            "POLICYBOT_WECHAT_AES_KEY": AES_KEY,
            "POLICYBOT_WECHAT_APP_ID": APP_ID,
            "POLICYBOT_RATE_LIMIT_PER_IP": "0",
            "POLICYBOT_RATE_LIMIT_PER_SESSION": "0",
            "POLICYBOT_INDEX_REFRESH_SECONDS": "1",
        }
    )
    demo = subprocess.run(
        [sys.executable, "-m", "bot.cli", "kb", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stderr
    with serve(["--workers", "2"], cwd=tmp_path, env=env) as (_, base):
        yield base, database


def _client(base: str) -> httpx.Client:
    # "Connection: close": every request on a new TCP connection, accepted by whichever worker wins
    return httpx.Client(base_url=base, headers={"Connection": "close"}, timeout=20)


def _both_workers(base: str) -> set[str]:
    """Wait until both workers answer (each worker builds its app after the socket is shared)."""
    seen: set[str] = set()
    with _client(base) as c:
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(c.get("/healthz").headers["x-policybot-worker"])
    assert len(seen) == 2, f"only worker(s) {seen} answered"
    return seen


def _until_crossed(step: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """Repeat a two-request step until its two requests were served by different workers."""
    for _ in range(MAX_TRIES):
        first, second = step()
        if first != second:
            return first, second
    pytest.fail(f"{MAX_TRIES} attempts and every pair went to one worker")


def test_conversation_continues_across_workers(server: tuple[str, str]) -> None:
    base, _ = server
    _both_workers(base)
    with _client(base) as c:
        start = c.post("/api/v1/sessions", json={})
        token = start.json()["session"]

        def clarify_then_choose() -> tuple[str, str]:
            r1 = c.post("/api/v1/chat", json={"session": token, "text": "知识库"})
            assert r1.status_code == 200, r1.text
            first = r1.json()["replies"][0]
            assert first["kind"] == "clarify" and len(first["suggestions"]) >= 2
            r2 = c.post("/api/v1/chat", json={"session": token, "text": "1"})
            assert r2.status_code == 200, r2.text  # the session id signed by the other worker is valid here
            chosen = r2.json()["replies"][0]
            # "1" only means something with the state the other request stored
            assert chosen["kind"] == "answer" and chosen["faq_id"], chosen
            return r1.headers["x-policybot-worker"], r2.headers["x-policybot-worker"]

        a, b = _until_crossed(clarify_then_choose)
        assert a != b


class WeChat:
    """Plays the WeChat server in safe mode against the running service."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
        self.ids = int(time.time()) * 1000

    def request(self, content: str) -> tuple[dict[str, str], bytes]:
        self.ids += 1
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{self.ids}</MsgId></xml>"
        )
        ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        signer = WeChatSigner()
        signer.add_data(TOKEN, ts, nonce)
        params = {
            "signature": signer.signature,
            "timestamp": ts,
            "nonce": nonce,
            "openid": OPENID,
            "encrypt_type": "aes",
            "msg_signature": envelope["MsgSignature"],
        }
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
        ).encode()
        return params, body

    def post(self, params: dict[str, str], body: bytes) -> tuple[str, str]:
        """(reply text, worker pid); the same params and body again is exactly WeChat's retry."""
        resp = self.client.post("/wechat", params=params, content=body, headers={"Content-Type": "text/xml"})
        assert resp.status_code == 200, resp.text
        worker = resp.headers["x-policybot-worker"]
        if resp.text == "success":
            return "", worker
        env: Any = xmltodict.parse(resp.text)["xml"]
        plain = self.crypto.decrypt_message(resp.text, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        return str(parse_message(plain).content), worker

    def say(self, content: str) -> tuple[str, str]:
        return self.post(*self.request(content))


def test_wechat_state_and_retries_across_workers(server: tuple[str, str]) -> None:
    base, database = server
    _both_workers(base)
    with _client(base) as c:
        wx = WeChat(c)

        def leave_then_cancel() -> tuple[str, str]:
            offer, w1 = wx.say("留言")
            assert "请用一句话描述您要咨询的问题" in offer, offer
            cancelled, w2 = wx.say("取消")
            assert cancelled.startswith("已取消留言"), (
                cancelled
            )  # the pending offer came from the other worker
            return w1, w2

        _until_crossed(leave_then_cancel)

        question = "依申请公开多长时间答复"
        params, body = wx.request(question)
        first, first_worker = wx.post(params, body)
        assert "工作日" in first, first
        retried_on = None
        for _ in range(MAX_TRIES):
            again, worker = wx.post(params, body)
            assert again == first  # a retry gets the stored reply, whichever worker takes it
            if worker != first_worker:
                retried_on = worker
                break
        assert retried_on is not None, "no retry reached the other worker"

    engine = create_engine(normalise_url(database))
    try:
        with engine.connect() as conn:
            logged = conn.execute(
                text("SELECT count(*) FROM query_log WHERE channel = 'wechat' AND text = :q"), {"q": question}
            ).scalar_one()
            secrets_stored = conn.execute(
                text("SELECT count(*) FROM app_value WHERE key = 'secret_key'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert logged == 1
    assert secrets_stored == 1


def test_telegram_updates_are_answered_by_either_worker(
    server: tuple[str, str], fake_telegram: tuple[str, FakeTelegramState]
) -> None:
    base, _ = server
    _, fake = fake_telegram
    _both_workers(base)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    chat, served = 880_000, set()
    with _client(base) as c:
        for update_id in range(1, MAX_TRIES + 1):
            chat += 1
            update = {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": int(time.time()),
                    "from": {"id": chat, "is_bot": False, "first_name": "张"},
                    "chat": {"id": chat, "type": "private"},
                    "text": "依申请公开多久答复",
                },
            }
            first = c.post("/telegram/webhook", json=update, headers=headers)
            assert first.status_code == 200 and first.json() == {"ok": True}, first.text
            served.add(first.headers["x-policybot-worker"])
            again = c.post("/telegram/webhook", json=update, headers=headers)  # Telegram's redelivery
            assert again.json().get("duplicate") is True  # whichever worker took it
            deadline = time.monotonic() + 20
            while not fake.sent(chat) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "工作日" in fake.sent(chat)[0]["text"]
            if len(served) == 2:
                break
    assert len(served) == 2, "every update went to one worker"
    time.sleep(0.5)
    assert all(len(fake.sent(c)) == 1 for c in range(880_001, chat + 1))  # one reply per update
