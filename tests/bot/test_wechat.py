"""The WeChat channel through real requests: bodies from tests/fixtures/wechat, encrypted and
signed with wechatpy's own crypto and signer, posted to the app; replies decrypted and parsed with
wechatpy. Customer-service pushes go to a fake WeChat API server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.parser import parse_message
from wechatpy.utils import WeChatSigner

from bot.app import create_app
from bot.channels.wechat import DbSessionStorage, WeChatChannel, render_text, split_bytes
from bot.conversation import Reply
from bot.models import ChatSession, InboundMessage
from bot.texts import say, ticket_reply_notice
from knowledge.models import QueryLog
from tests.bot.conftest import delivered, make_settings
from tests.fakes.server import serve
from tests.fakes.wechat_api import FakeWeChatState, create_fake_wechat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wechat"
TOKEN = "policybotToken2024"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 chars, like the console shows
ACCOUNT = "gh_0123456789ab"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
_ids = itertools.count(int(time.time()) * 1000)


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def fixture(name: str, **values: Any) -> str:
    base = {
        "to": ACCOUNT,
        "openid": OPENID,
        "create_time": int(time.time()),
        "msg_id": next(_ids),
        "content": "",
    }
    base.update(values)
    return (FIXTURES / name).read_text(encoding="utf-8").format(**base)


@dataclass
class WeChatServer:
    """Plays the WeChat server: signs (and in safe/compatible mode encrypts) callbacks."""

    client: TestClient
    mode: str  # plain | safe | compatible
    app_id: str

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(TOKEN, AES_KEY, self.app_id)

    def params(self, *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        """Signed URL parameters with a fresh nonce, as WeChat sends them."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": OPENID}

    def build(
        self, xml: str, *, timestamp: int | None = None, nonce: str | None = None, encrypt: bool | None = None
    ) -> tuple[dict[str, str], bytes]:
        """URL parameters and body; `encrypt=False` sends plaintext whatever the mode."""
        params = self.params(timestamp=timestamp, nonce=nonce)
        if encrypt is False:
            return params, xml.encode()
        if self.mode == "plain":
            return params, xml.encode()
        enc = self.crypto.encrypt_message(xml, params["nonce"], params["timestamp"])
        envelope = parse_xml(enc)
        params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        if self.mode == "safe":
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
        else:  # compatible: plaintext fields and the encrypted copy
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
        return params, body.encode()

    def post(self, xml: str, **kw: Any) -> Any:
        params, body = self.build(xml, **kw)
        return self.client.post("/wechat", params=params, content=body, headers={"Content-Type": "text/xml"})

    def say(self, xml: str) -> str:
        """Post and return the text of the passive reply ('' for 'success')."""
        resp = self.post(xml)
        assert resp.status_code == 200, resp.text
        return self.reply_text(resp)

    def reply_text(self, resp: Any) -> str:
        if resp.text == "success":
            return ""
        xml = resp.text
        if self.mode != "plain":
            env = parse_xml(xml)
            assert "<Content>" not in xml  # the reply is encrypted when the request was
            xml = self.crypto.decrypt_message(xml, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        msg = parse_message(xml)
        assert msg.type == "text" and msg.source == ACCOUNT and msg.target == OPENID
        return str(msg.content)

    def text(self, content: str, **kw: Any) -> str:
        return self.say(fixture("text.xml", content=content, **kw))


def parse_xml(xml: str) -> dict[str, str]:
    import xmltodict

    return dict(xmltodict.parse(xml)["xml"])


@pytest.fixture
def fake_wechat() -> Iterator[tuple[str, FakeWeChatState]]:
    app = create_fake_wechat()
    with serve(app) as url:
        yield url, app.state.fake


def wx_settings(url: str, api: str, mode: str, **extra: Any) -> Any:
    """Settings for `mode`: an AES key alone means safe mode, so compatible mode is set explicitly."""
    if mode == "compatible":
        extra.setdefault("wechat_mode", "compatible")
    return make_settings(
        url,
        wechat_token=TOKEN,
        wechat_app_id="wx_test_app",
        wechat_secret="test-app-secret",
        wechat_aes_key=None if mode == "plain" else AES_KEY,
        wechat_api_base=api + "/cgi-bin/",
        **extra,
    )


MODES = ["plain", "safe", "compatible"]
all_modes = pytest.mark.parametrize("mode", MODES, indirect=True)


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> str:
    """plain unless a test asks for others with @all_modes."""
    return str(getattr(request, "param", "plain"))


@pytest.fixture
def wx_app(demo_url: str, fake_wechat: tuple[str, FakeWeChatState], mode: str) -> FastAPI:
    return create_app(
        wx_settings(
            demo_url,
            fake_wechat[0],
            mode,
            wechat_menu={"HOT": "/top", "Q1": "依申请公开多久答复", "LEAVE": "留言"},
        )
    )


@pytest.fixture
def wx(wx_app: FastAPI, mode: str) -> Iterator[WeChatServer]:
    with TestClient(wx_app) as c:
        yield WeChatServer(c, mode, "wx_test_app")


def count(app: FastAPI, model: Any) -> int:
    with app.state.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def wait_for(pred: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- verification ---------------------------------------------------------------------------------
def test_echo_verification(wx: WeChatServer) -> None:
    params = wx.params()
    ok = wx.client.get("/wechat", params={**params, "echostr": "8842310987654"})
    assert ok.status_code == 200 and ok.text == "8842310987654"
    bad = wx.client.get("/wechat", params={**params, "signature": "0" * 40, "echostr": "x"})
    assert bad.status_code == 403 and "x" not in bad.text
    stale = wx.params(timestamp=int(time.time()) - 301)
    assert wx.client.get("/wechat", params={**stale, "echostr": "x"}).status_code == 403


# --- messages -------------------------------------------------------------------------------------
@all_modes
def test_text_question_is_answered_in_every_mode(wx: WeChatServer, wx_app: FastAPI) -> None:
    out = wx.text("依申请公开多久答复")
    assert "20个工作日" in out and out.count("青人社〔2023〕11号") == 1 and "有用" in out  # one citation
    assert count(wx_app, QueryLog) == 1


@all_modes
def test_retry_with_same_msgid_gets_same_reply_and_one_log_entry(wx: WeChatServer, wx_app: FastAPI) -> None:
    xml = fixture("text.xml", content="依申请公开多久答复")
    first, second, third = wx.say(xml), wx.say(xml), wx.say(xml)
    assert first and first == second == third
    assert count(wx_app, QueryLog) == 1
    assert count(wx_app, InboundMessage) == 1


def test_concurrent_retries_make_one_log_entry(wx: WeChatServer, wx_app: FastAPI) -> None:
    xml = fixture("text.xml", content="依申请公开多久答复")
    results: list[int] = []

    def go() -> None:
        results.append(wx.post(xml).status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert count(wx_app, QueryLog) == 1


def test_clarify_suggestions_are_numbered_and_choice_works(wx: WeChatServer) -> None:
    out = wx.text("社保")
    if "1. " not in out:  # the demo KB answers or offers passages for this; then use the welcome list
        out = wx.say(fixture("event_subscribe.xml"))
    lines = [ln for ln in out.splitlines() if re.match(r"^\d\. ", ln)]
    assert lines, out
    assert wx.text("1")  # a numbered choice gets an answer


@all_modes
def test_subscribe_welcome_with_top_questions_and_unsubscribe_ends_session(
    wx: WeChatServer, wx_app: FastAPI
) -> None:
    out = wx.say(fixture("event_subscribe.xml"))
    assert "政策咨询" in out and "1. " in out and "2. " in out
    wx.text("依申请公开多久答复")
    assert count(wx_app, ChatSession) == 1
    assert wx.say(fixture("event_unsubscribe.xml")) == ""
    assert count(wx_app, ChatSession) == 0


def test_event_retry_is_deduplicated_by_user_and_time(wx: WeChatServer, wx_app: FastAPI) -> None:
    xml = fixture("event_click.xml", content="Q1")
    assert wx.say(xml) == wx.say(xml)
    assert count(wx_app, QueryLog) == 1


def test_menu_clicks(wx: WeChatServer) -> None:
    assert "20个工作日" in wx.say(fixture("event_click.xml", content="Q1"))
    assert "1. " in wx.say(fixture("event_click.xml", content="HOT"))
    assert "暂未开放" in wx.say(fixture("event_click.xml", content="NO_SUCH_KEY"))
    # built in: the 我的订阅 menu entry (no catalogue in the demo: no topics yet)
    assert wx.say(fixture("event_click.xml", content="MY_SUBSCRIPTIONS")) == say("subscribe.none_available")
    assert wx.say(fixture("event_view.xml")) == ""


def test_voice_recognition_is_text_other_types_get_polite_reply(wx: WeChatServer, wx_app: FastAPI) -> None:
    assert "20个工作日" in wx.say(fixture("voice.xml", content="依申请公开多久答复。"))
    empty = wx.say(fixture("voice.xml", content=""))  # no Recognition: one short line with a hint
    assert "没能识别这段语音" in empty and "文字" in empty and "菜单" in empty and "\n" not in empty
    assert "文字" in wx.say(fixture("image.xml"))
    assert "文字" in wx.say(fixture("location.xml"))
    unknown = fixture("text.xml").replace("<![CDATA[text]]>", "<![CDATA[hologram]]>")
    assert "文字" in wx.say(unknown)
    assert count(wx_app, QueryLog) == 1


# --- bad input ------------------------------------------------------------------------------------
def _nothing_processed(app: FastAPI) -> None:
    assert count(app, QueryLog) == 0
    assert count(app, InboundMessage) == 0


@all_modes
def test_bad_signature_is_403_and_nothing_processed(wx: WeChatServer, wx_app: FastAPI) -> None:
    params, body = wx.build(fixture("text.xml", content="依申请公开多久答复"))
    for change in ({"signature": "0" * 40}, {"signature": ""}, {"nonce": "other"}):
        resp = wx.client.post("/wechat", params={**params, **change}, content=body)
        assert resp.status_code == 403
    if wx.mode != "plain":
        resp = wx.client.post("/wechat", params={**params, "msg_signature": "f" * 40}, content=body)
        assert resp.status_code == 403
    _nothing_processed(wx_app)


def test_old_timestamp_is_refused_as_replay(wx: WeChatServer, wx_app: FastAPI) -> None:
    xml = fixture("text.xml", content="依申请公开多久答复")
    assert wx.post(xml, timestamp=int(time.time()) - 301).status_code == 403
    assert wx.post(xml, timestamp=int(time.time()) + 3600).status_code == 403
    _nothing_processed(wx_app)


@all_modes
@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
def test_entity_declarations_are_refused(wx: WeChatServer, wx_app: FastAPI, name: str) -> None:
    resp = wx.post(fixture(name))
    assert resp.status_code == 400
    _nothing_processed(wx_app)


@pytest.mark.parametrize(
    "body",
    [
        "<xml><ToUserName>a</ToUserName>",  # truncated
        "not xml at all",
        "",
        "<xml>just text</xml>",
        "<other><MsgType>text</MsgType></other>",
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime></xml>",  # no MsgType
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>x</CreateTime>"
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",  # bad CreateTime
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName><a>1</a></FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",  # nested where text expected
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",  # repeated
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>12ab</MsgId></xml>",  # bad MsgId
    ],
)
def test_malformed_xml_is_400(wx: WeChatServer, wx_app: FastAPI, body: str) -> None:
    resp = wx.post(body)
    assert resp.status_code == 400
    _nothing_processed(wx_app)


def test_oversized_body_is_refused_before_parsing(
    demo_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    # our own cap (400), with the app-wide body limit raised above it
    app = create_app(wx_settings(demo_url, fake_wechat[0], "plain", max_body_bytes=1024 * 1024))
    with TestClient(app) as c:
        wx = WeChatServer(c, "plain", "wx_test_app")
        big = fixture("text.xml", content="问" * 30000)  # about 90 KB
        assert wx.post(big).status_code == 400

        def chunks() -> Iterator[bytes]:  # chunked upload, no Content-Length
            for _ in range(100):
                yield b"<" * 1024

        resp = c.post("/wechat", params=wx.params(), content=chunks())
        assert resp.status_code == 400
        _nothing_processed(app)


def test_oversized_body_with_default_limit(wx: WeChatServer, wx_app: FastAPI) -> None:
    resp = wx.post(fixture("text.xml", content="问" * 30000))
    assert resp.status_code in (400, 413)  # the app-wide limit answers first with 413
    _nothing_processed(wx_app)


@pytest.mark.parametrize("mode", ["safe", "compatible"], indirect=True)
def test_encrypted_garbage_and_wrong_app_id(wx: WeChatServer, wx_app: FastAPI, mode: str) -> None:
    params = wx.params()
    for encrypt in (
        "!!!not-base64!!!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"x" * 64).decode(),
    ):
        p = {
            **params,
            "encrypt_type": "aes",
            "msg_signature": sign(TOKEN, params["timestamp"], params["nonce"], encrypt),
        }
        body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        assert wx.client.post("/wechat", params=p, content=body).status_code == 400
    # correctly encrypted for another account
    other = WeChatServer(wx.client, mode, "wx_other_app")
    assert other.post(fixture("text.xml", content="依申请公开多久答复")).status_code == 400
    # decrypted payload that is itself a billion-laughs document
    inner = (
        PrpCrypto(base64.b64decode(AES_KEY + "="))
        .encrypt(fixture("billion_laughs.xml"), "wx_test_app")
        .decode()
    )
    p = {
        **params,
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, params["timestamp"], params["nonce"], inner),
    }
    assert (
        wx.client.post("/wechat", params=p, content=f"<xml><Encrypt>{inner}</Encrypt></xml>").status_code
        == 400
    )
    _nothing_processed(wx_app)


@pytest.mark.parametrize("mode", ["plain", "safe"], indirect=True)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(lambda t: f"<xml>{t}</xml>".encode()))
)
def test_fuzzed_bodies_never_500(wx: WeChatServer, body: bytes) -> None:
    params, _ = wx.build(fixture("text.xml"))
    resp = wx.client.post("/wechat", params=params, content=body)
    assert resp.status_code in (200, 400, 403)


# --- reply budget ---------------------------------------------------------------------------------
def test_slow_answer_goes_out_by_customer_service_api(
    demo_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    url, fake = fake_wechat
    app = create_app(wx_settings(demo_url, url, "safe", wechat_reply_budget_seconds=0.2))
    dialogue = app.state.dialogue
    original = dialogue.decide

    def slow(msg: Any, state: Any) -> Any:
        time.sleep(0.6)
        return original(msg, state)

    dialogue.decide = slow
    with TestClient(app) as c:
        wx = WeChatServer(c, "safe", "wx_test_app")
        xml = fixture("text.xml", content="依申请公开多久答复")
        resp = wx.post(xml)
        assert resp.status_code == 200 and resp.text == "success"
        texts = wait_for(lambda: fake.texts_to(OPENID))
        assert "20个工作日" in texts[0]
        assert wx.post(xml).text == "success"  # a retry does not answer twice
        time.sleep(0.8)
        assert len(fake.texts_to(OPENID)) == 1
        assert count(app, QueryLog) == 1


# --- pushes (ticket replies) --------------------------------------------------------------------------
def _open_ticket(wx: WeChatServer) -> str:
    wx.text("我家楼下的共享单车乱停放谁来管")
    assert "匿名" in wx.text("留言")
    m = re.search(r"LY\d{8}-\d{3,6}", wx.text("匿名"))
    assert m
    return m.group(0)


def test_end_to_end_ticket_reply_is_pushed_as_customer_service_message(
    wx: WeChatServer, wx_app: FastAPI, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    _, fake = fake_wechat
    no = _open_ticket(wx)
    wx_app.state.tickets.reply(
        no, staff="李科员", text="共享单车停放由区交通委和街道城管中队负责，可拨打12345反映。"
    )
    delivered(wx_app)
    texts = fake.texts_to(OPENID)
    assert len(texts) == 1 and texts[0].count(no) == 1 and "区交通委" in texts[0]
    assert texts[0].count("已有答复") == 1  # one preamble, the number once
    events = [e for e in wx_app.state.tickets.events(no) if e.action == "delivery"]
    assert events and events[-1].detail["ok"] is True
    assert "区交通委" in wx.text(f"查询 {no}")  # and always available on request
    assert fake.token_requests == 1


def test_push_outside_window_without_template_is_recorded_impossible(
    wx: WeChatServer, wx_app: FastAPI, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    _, fake = fake_wechat
    no = _open_ticket(wx)
    channel: WeChatChannel = wx_app.state.channels["wechat"]
    assert channel.within_window(OPENID)
    with wx_app.state.sessions.begin() as s:  # the user's last message was 49 hours ago
        row = s.scalars(
            select(ChatSession).where(ChatSession.channel == "wechat", ChatSession.user_id == OPENID)
        ).one()
        row.updated_at = row.updated_at - dt.timedelta(hours=49)
    assert not channel.within_window(OPENID)
    wx_app.state.tickets.reply(no, staff="李科员", text="答复内容")
    delivered(wx_app)
    assert fake.texts_to(OPENID) == []
    delivery = [e for e in wx_app.state.tickets.events(no) if e.action == "delivery"][-1]
    assert delivery.detail["ok"] is False and "48-hour" in delivery.detail["error"]
    (row,) = wx_app.state.outbox.rows()
    assert row.status == "impossible" and row.attempts == 1  # recorded once, never retried
    assert "答复内容" in wx.text(f"查询 {no}")


def test_push_outside_window_sends_subscription_notice(
    demo_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    url, fake = fake_wechat
    app = create_app(wx_settings(demo_url, url, "plain", wechat_notice_template_id="TPL-123"))
    channel: WeChatChannel = app.state.channels["wechat"]
    data = {"ticket_no": "LY20250101-0001", "department": "区人社局", "reply": "内容"}
    channel.push(
        "oUserNeverWroteToUsAAAAAAAAA",
        Reply(
            "status", "（区人社局以外的括号）", ticket_no="LY20250101-0001", notice=ticket_reply_notice(data)
        ),
    )
    assert len(fake.notices) == 1
    notice = fake.notices[0]
    assert notice["kind"] == "subscribe" and notice["template_id"] == "TPL-123"
    assert notice["data"]["character_string1"]["value"] == "LY20250101-0001"
    assert notice["data"]["thing2"]["value"] == "区人社局"
    assert len(notice["data"]["thing3"]["value"]) <= 20


def test_failed_push_is_retried_with_backoff_and_recorded(
    demo_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    url, fake = fake_wechat
    app = create_app(wx_settings(demo_url, url, "plain", push_backoff_seconds=0.05))
    with TestClient(app) as c:  # the app's own drain thread delivers
        no = _open_ticket(WeChatServer(c, "plain", "wx_test_app"))
        fake.fail_next = ["http", "http"]
        started = time.monotonic()
        app.state.tickets.reply(no, staff="李科员", text="已转交承办部门办理。")
        assert time.monotonic() - started < 3  # the staff member never waits for a push (a busy CI host)
        wait_for(lambda: app.state.outbox.counts().get("sent") == 1, timeout=30)
        # the attempt is recorded on the ticket just after the outbox row is marked
        wait_for(lambda: len([e for e in app.state.tickets.events(no) if e.action == "delivery"]) == 3)
        deliveries = [e.detail for e in app.state.tickets.events(no) if e.action == "delivery"]
        assert [(d["attempt"], d["ok"]) for d in deliveries] == [(1, False), (2, False), (3, True)]
        assert len(fake.texts_to(OPENID)) == 1


def test_token_is_shared_by_workers_and_refreshed_when_revoked(
    demo_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    url, fake = fake_wechat
    first = create_app(wx_settings(demo_url, url, "plain"))
    second = create_app(wx_settings(demo_url, url, "plain"))  # another worker on the same database
    a: WeChatChannel = first.state.channels["wechat"]
    b: WeChatChannel = second.state.channels["wechat"]
    a.send_text(OPENID, "one")
    b.send_text(OPENID, "two")
    assert fake.token_requests == 1
    fake.revoke_tokens()  # e.g. someone fetched a token elsewhere
    b.send_text(OPENID, "three")
    a.send_text(OPENID, "four")
    assert fake.token_requests == 2
    assert fake.texts_to(OPENID) == ["one", "two", "three", "four"]


def test_db_session_storage_expiry(wx_app: FastAPI) -> None:
    storage = DbSessionStorage(wx_app.state.sessions, margin=60)
    storage.set("k", "v", 3600)
    assert storage.get("k") == "v"
    storage.set("k", "w", 30)  # expires within the safety margin: reported missing
    assert storage.get("k", "gone") == "gone"
    storage.delete("k")
    assert storage.get("k") is None


# --- rendering --------------------------------------------------------------------------------------
def test_render_links_and_suggestions() -> None:
    r = Reply(
        "clarify",
        "请选择：",
        suggestions=["甲问题", "乙问题"],
        sources=[{"title": "条例", "url": "https://www.gov.cn/x"}],
    )
    text = render_text(r)
    assert "1. 甲问题\n2. 乙问题" in text and '<a href="https://www.gov.cn/x">《条例》</a>' in text
    assert render_text(Reply("answer", "详见 https://a.gov.cn/p?id=1 。")).count("<a href=") == 1
    pieces = split_bytes("问" * 1500)
    assert (
        len(pieces) == 3 and all(len(p.encode()) <= 2000 for p in pieces) and "".join(pieces) == "问" * 1500
    )


# --- safe mode, replay and per-user dedup (the security review) -------------------------------------
def _other_user(xml: str, openid: str = "oOtherUser000000000000000001") -> str:
    return xml.replace(f"<![CDATA[{OPENID}]]>", f"<![CDATA[{openid}]]>")


@pytest.mark.parametrize("mode", ["safe"], indirect=True)
def test_safe_mode_refuses_unencrypted_or_unsigned_posts(wx: WeChatServer, wx_app: FastAPI) -> None:
    xml = fixture("text.xml", content="我要留言")
    params, body = wx.build(xml, encrypt=False)  # a valid URL signature, a plaintext body
    assert wx.client.post("/wechat", params=params, content=body).status_code == 403
    params, body = wx.build(xml)
    no_sig = {k: v for k, v in params.items() if k != "msg_signature"}
    assert wx.client.post("/wechat", params=no_sig, content=body).status_code == 403
    raw_type = {**params, "encrypt_type": "raw"}
    assert wx.client.post("/wechat", params=raw_type, content=body).status_code == 403
    _nothing_processed(wx_app)
    assert "20个工作日" in wx.text("依申请公开多久答复")  # the real, encrypted message still works


@pytest.mark.parametrize("mode", ["compatible"], indirect=True)
def test_compatible_mode_accepts_plain_and_encrypted(wx: WeChatServer, wx_app: FastAPI) -> None:
    params, body = wx.build(fixture("text.xml", content="依申请公开多久答复"), encrypt=False)
    resp = wx.client.post("/wechat", params=params, content=body)
    assert resp.status_code == 200 and "20个工作日" in parse_message(resp.text).content
    assert "20个工作日" in wx.text("依申请公开多久答复")


def test_mode_setting_defaults_and_conflicts(demo_url: str, fake_wechat: tuple[str, FakeWeChatState]) -> None:
    api = fake_wechat[0]
    assert create_app(wx_settings(demo_url, api, "safe")).state.channels["wechat"].mode == "safe"
    assert create_app(wx_settings(demo_url, api, "plain")).state.channels["wechat"].mode == "plain"
    assert (
        create_app(wx_settings(demo_url, api, "safe", wechat_mode="compatible")).state.channels["wechat"].mode
        == "compatible"
    )
    with pytest.raises(ValueError, match="AES_KEY"):
        create_app(wx_settings(demo_url, api, "plain", wechat_mode="safe"))


@pytest.mark.parametrize("mode", ["plain"], indirect=True)
def test_plain_mode_refuses_encrypted_posts(wx: WeChatServer, wx_app: FastAPI) -> None:
    params = wx.params()
    p = {**params, "encrypt_type": "aes", "msg_signature": "0" * 40}
    assert wx.client.post("/wechat", params=p, content=b"<xml><Encrypt>x</Encrypt></xml>").status_code == 400
    _nothing_processed(wx_app)


@all_modes
def test_a_signed_timestamp_and_nonce_carry_one_message_only(wx: WeChatServer, wx_app: FastAPI) -> None:
    """Someone who read a log line (signature, timestamp, nonce) cannot post another body with it."""
    params, body = wx.build(fixture("text.xml", content="依申请公开多久答复"))
    first = wx.client.post("/wechat", params=params, content=body)
    assert first.status_code == 200
    # WeChat's own retry (same message, same signed pair): the same stored reply
    again = wx.client.post("/wechat", params=params, content=body)
    assert again.status_code == 200 and wx.reply_text(again) == wx.reply_text(first)
    for forged in (
        fixture("text.xml", content="我要留言"),  # another MsgId, same user
        _other_user(fixture("text.xml", content="查询 LY20261201-0001")),
    ):  # another user
        if wx.mode == "plain":
            forged_body = forged.encode()
        else:  # the attacker can even encrypt (compatible/safe): the signed pair still gives it away
            enc = parse_xml(wx.crypto.encrypt_message(forged, params["nonce"], params["timestamp"]))
            params = {**params, "msg_signature": enc["MsgSignature"]}
            forged_body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA["
                f"{enc['Encrypt']}]]></Encrypt></xml>"
            ).encode()
        resp = wx.client.post("/wechat", params=params, content=forged_body)
        assert resp.status_code == 403, resp.text
    assert count(wx_app, QueryLog) == 1 and count(wx_app, InboundMessage) == 1


def test_replay_is_refused_by_another_app_server(
    db_url: str, fake_wechat: tuple[str, FakeWeChatState]
) -> None:
    """Two app instances on one database (two workers or servers) share the replay table (SQLite and
    PostgreSQL)."""
    one = create_app(wx_settings(db_url, fake_wechat[0], "plain"))
    two = create_app(wx_settings(db_url, fake_wechat[0], "plain"))
    with TestClient(one) as c1, TestClient(two) as c2:
        a, b = WeChatServer(c1, "plain", "wx_test_app"), WeChatServer(c2, "plain", "wx_test_app")
        params, body = a.build(fixture("text.xml", content="依申请公开多久答复"))
        assert c1.post("/wechat", params=params, content=body).status_code == 200
        forged = fixture("text.xml", content="我要留言").encode()
        assert c2.post("/wechat", params=params, content=forged).status_code == 403
        fresh = b.post(_other_user(fixture("text.xml", content="依申请公开多久答复")))  # a fresh nonce passes
        assert fresh.status_code == 200 and parse_message(fresh.text).content


def test_same_msgid_from_two_users_gets_two_answers(wx: WeChatServer, wx_app: FastAPI) -> None:
    msg_id = next(_ids)
    mine = wx.say(fixture("text.xml", content="依申请公开多久答复", msg_id=msg_id))
    resp = wx.post(_other_user(fixture("text.xml", content="碳达峰", msg_id=msg_id)))
    reply = parse_message(resp.text)
    assert reply.target == "oOtherUser000000000000000001"
    theirs = str(reply.content)
    assert "20个工作日" in mine and "20个工作日" not in theirs and theirs != mine
    assert count(wx_app, QueryLog) == 2 and count(wx_app, InboundMessage) == 2
    with wx_app.state.sessions() as s:
        keys = set(s.scalars(select(InboundMessage.msg_id)))
    assert keys == {f"{OPENID}:{msg_id}", f"oOtherUser000000000000000001:{msg_id}"}


def test_replay_rows_expire_with_the_dedup_rows(wx: WeChatServer, wx_app: FastAPI) -> None:

    from sqlalchemy import update

    wx.text("依申请公开多久答复")
    with wx_app.state.sessions.begin() as s:
        s.execute(update(InboundMessage).values(created_at=dt.datetime(2020, 1, 1)))
    channel = wx_app.state.channels["wechat"]
    channel._last_cleanup = float("-inf")
    channel._maybe_cleanup()
    assert count(wx_app, InboundMessage) == 0


def test_degraded_mode_refuses_replays_in_memory() -> None:
    from bot.spool import LocalDedup

    d = LocalDedup()
    assert d.claim_pair("1700000000:123", "u:1") and d.claim_pair("1700000000:123", "u:1")
    assert not d.claim_pair("1700000000:123", "u:2") and not d.claim_pair("1700000000:123", "v:1")
    assert d.claim_pair("", "anything")


@all_modes
@pytest.mark.parametrize("create_time", ["9" * 400, "-1", "1e9", "１７０００００００"])
def test_absurd_create_time_is_400(wx: WeChatServer, wx_app: FastAPI, create_time: str) -> None:
    xml = fixture("text.xml", content="依申请公开多久答复")
    xml = re.sub(r"<CreateTime>\d+</CreateTime>", f"<CreateTime>{create_time}</CreateTime>", xml)
    assert wx.post(xml).status_code == 400
    _nothing_processed(wx_app)


@pytest.mark.parametrize("nonce", ["x" * 65, "a b", "中文"])
def test_bad_nonce_is_refused(wx: WeChatServer, wx_app: FastAPI, nonce: str) -> None:
    ts = str(int(time.time()))
    params = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    resp = wx.client.post("/wechat", params=params, content=fixture("text.xml", content="你好").encode())
    assert resp.status_code == 403
    _nothing_processed(wx_app)


def test_faq_html_is_never_sent_as_markup() -> None:
    r = Reply(
        "answer",
        '请看<script>alert(1)</script><a href="javascript:alert(2)">这里</a> '
        "http://a.gov.cn/x?a=1&b=2 <img src=x onerror=alert(3)>",
        sources=[{"title": "条例<b>", "url": "javascript:alert(4)"}, {"title": "办法", "url": "ftp://x"}],
    )
    text = render_text(r)
    tags = re.findall(r"<[^>]*>", text)
    assert tags == ['<a href="http://a.gov.cn/x?a=1&amp;b=2">', "</a>"], tags
    assert "javascript" not in "".join(tags) and "原文链接" not in text
    assert "＜script＞" in text  # shown as text, not run or dropped silently


@pytest.mark.parametrize("timestamp", ["9" * 400, "-5", " 1700000000", "1e9"])
def test_absurd_signed_timestamp_is_refused(wx: WeChatServer, wx_app: FastAPI, timestamp: str) -> None:
    params = {"signature": sign(TOKEN, timestamp, "12345"), "timestamp": timestamp, "nonce": "12345"}
    resp = wx.client.post("/wechat", params=params, content=fixture("text.xml", content="你好").encode())
    assert resp.status_code == 403
    assert wx.client.get("/wechat", params={**params, "echostr": "x"}).status_code in (403, 422)
    _nothing_processed(wx_app)
