"""Subscriptions (政策订阅) end to end on real parts: four citizens subscribe through their channels
(the widget API, Telegram's /subscribe through the webhook and a fake Bot API on 127.0.0.1, two
WeChat users through the inbox, outside the 48-hour window, one of whom did not accept the 订阅通知
at the fake WeChat API) and a relay partner by e-mail (a local aiosmtpd server), on SQLite and PostgreSQL. Publishing a tagged
policy queues one outbox row per subscriber in the import's transaction; two drains deliver each
eligible one exactly once and record the refuser impossible. Then 退订, erasure, quiet hours and the
daily cap on a frozen outbox clock, and the "your question now has an answer" notice.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot.conversation import Incoming
from bot.models import ChatSession, Delivery
from bot.privacy import erase_data, resolve
from bot.subscribe_talk import command
from handoff.weekly import REPORT_TAG, week_tag
from knowledge.policies.tags import TagCatalogue
from knowledge.subscriptions import SubscriptionStore
from tests.bot.conftest import make_settings
from tests.fakes.server import free_port, serve
from tests.fakes.telegram_api import FakeTelegramState, create_fake_telegram
from tests.fakes.wechat_api import FakeWeChatState, create_fake_wechat

TG_SECRET = "webhook-secret-0123456789"
TG_CHAT = 880001
WX_ACCEPTS, WX_REFUSES = "oAcceptsNotice000000000000001", "oRefusesNotice000000000000002"
PARTNER = "office@park.example.cn"
NOON = dt.datetime(2026, 12, 2, 4, 0)  # 12:00 Beijing (UTC+8)
POLICY = "第一条 为支持高校毕业生就业创业，对首次创业的给予一次性补贴。\n第二条 本办法自发布之日起施行。"


@dataclass
class Sink:
    messages: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    app: FastAPI
    client: TestClient
    tg: FakeTelegramState
    wx: FakeWeChatState
    smtp: Sink
    clock: Clock
    web_session: str = ""

    @property
    def outbox(self) -> Any:
        return self.app.state.outbox

    def publish(self, title: str, doc_no: str, tags: list[str]) -> None:
        self.app.state.kb.policies.import_text(POLICY, title=title, doc_no=doc_no, tags=tags, by="test")

    def drain(self) -> int:
        return int(self.outbox.drain())

    def web_messages(self) -> list[str]:
        r = self.client.get("/api/v1/messages", params={"session": self.web_session})
        return [m["text"] for m in r.json()["replies"]]

    def tg_texts(self, needle: str) -> list[str]:
        return [m["text"] for m in self.tg.sent(TG_CHAT) if needle in m["text"]]

    def wx_notices(self, openid: str) -> list[dict[str, Any]]:
        return [n for n in self.wx.notices if n.get("touser") == openid]

    def rows(self, **where: str) -> list[Delivery]:
        with self.app.state.sessions() as s:
            q = select(Delivery).order_by(Delivery.id)
            for k, v in where.items():
                q = q.where(getattr(Delivery, k) == v)
            return list(s.scalars(q))

    def chat(self, channel: str, user: str, text: str) -> str:
        received = self.app.state.inbox.receive(Incoming(channel, user, text))
        return "\n".join(r.text for r in received.replies)


def catalogue(tmp_path: Path, sessions: Any) -> None:
    path = tmp_path / "tags.csv"
    path.write_text(
        "标签,同义词,分类\n就业创业,就业|创业,就业\n社会保障,社保,民生\n教育,,民生\n", encoding="utf-8"
    )
    TagCatalogue(sessions).import_file(path)


@pytest.fixture
def world(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    extra: dict[str, Any] = getattr(request, "param", {})
    tg_app, wx_app, sink = create_fake_telegram(), create_fake_wechat(), Sink()
    port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with serve(tg_app) as tg_url, serve(wx_app) as wx_url:
            tg, wx = tg_app.state.fake, wx_app.state.fake
            settings = make_settings(
                db_url,
                telegram_token=tg.token,
                telegram_webhook_secret=TG_SECRET,
                telegram_api_base=tg_url,
                wechat_token="wx-token-0123",
                wechat_app_id=wx.app_id,
                wechat_secret=wx.secret,
                wechat_api_base=wx_url + "/cgi-bin/",
                wechat_notice_template_id="TPL-SUB",
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_from="policybot@example.gov.cn",
                smtp_starttls=False,
                public_base_url="https://zhengce.example.gov.cn",
                outbox_enabled=False,
                jobs_enabled=False,
                push_backoff_seconds=0,
                spool_dir=str(tmp_path / "spool"),
                **extra,
            )
            from bot.app import create_app

            app = create_app(settings)
            clock = Clock(NOON)
            app.state.outbox.clock = clock
            catalogue(tmp_path, app.state.sessions)
            with TestClient(app) as client:
                yield World(app, client, tg, wx, sink, clock)
    finally:
        smtp.stop()


def subscribe_all(w: World) -> None:
    """The four citizens and the partner follow 就业创业, each through their own channel."""
    r = w.client.post("/api/v1/sessions").json()
    w.web_session = r["session"]
    reply = w.client.post("/api/v1/chat", json={"session": w.web_session, "text": "订阅 就业"}).json()
    assert "已订阅“就业创业”" in reply["replies"][0]["text"]  # the synonym resolved
    update_ = {
        "update_id": 9001,
        "message": {
            "message_id": 9001,
            "date": int(time.time()),
            "from": {"id": TG_CHAT, "is_bot": False, "first_name": "李"},
            "chat": {"id": TG_CHAT, "type": "private", "first_name": "李"},
            "text": "/subscribe 就业创业",
            "entities": [{"type": "bot_command", "offset": 0, "length": 10}],
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    assert w.client.post("/telegram/webhook", json=update_, headers=headers).status_code == 200
    end = time.monotonic() + 10
    while not w.tg_texts("已订阅"):
        assert time.monotonic() < end, w.tg.sent(TG_CHAT)
        time.sleep(0.02)
    for openid in (WX_ACCEPTS, WX_REFUSES):
        assert "已订阅“就业创业”" in w.chat("wechat", openid, "订阅 就业创业")
    with w.app.state.sessions.begin() as s:  # both last wrote 49 hours ago: outside the window
        s.execute(
            update(ChatSession)
            .where(ChatSession.channel == "wechat")
            .values(updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=49))
        )
    w.wx.refused_notices.add(WX_REFUSES)
    SubscriptionStore(w.app.state.sessions).add("email", PARTNER, "创业", label="青浦工业园区")


def test_a_tagged_policy_reaches_each_eligible_subscriber_exactly_once(world: World) -> None:
    w = world
    subscribe_all(w)
    SubscriptionStore(w.app.state.sessions).add("telegram", str(TG_CHAT), "社保")  # two of its tags
    w.publish("关于支持高校毕业生创业的通知", "青人社〔2026〕9号", ["就业", "社保"])
    assert len(w.rows(kind="sub_policy")) == 5  # one per subscriber, in the import's transaction
    w.drain()
    w.drain()  # a second drain sends nothing again
    web = [t for t in w.web_messages() if "高校毕业生创业" in t]
    assert len(web) == 1
    assert "青人社〔2026〕9号" in web[0] and "https://zhengce.example.gov.cn/policies/" in web[0]
    assert web[0].startswith("【政策订阅·就业创业】")  # the topic this citizen follows
    (tg,) = w.tg_texts("高校毕业生创业")  # one message for a subscriber of both tags
    assert tg.startswith("【政策订阅·就业创业、社会保障】")
    notices = w.wx_notices(WX_ACCEPTS)
    assert len(notices) == 1 and notices[0]["template_id"] == "TPL-SUB"
    assert w.wx_notices(WX_REFUSES) == [] and w.wx.texts_to(WX_REFUSES) == []
    (refused,) = w.rows(user_id=WX_REFUSES)
    assert refused.status == "impossible" and "43101" in (refused.last_error or "")
    mails = [m for to, m in w.smtp.messages if to == [PARTNER]]
    assert len(mails) == 1 and "高校毕业生创业" in str(mails[0]["Subject"])
    assert "退订" not in mails[0].get_body().get_content().split("\n")[0]
    assert {r.status for r in w.rows(kind="sub_policy")} == {"sent", "impossible"}


def test_unsubscribe_and_erasure_stop_pushes(world: World) -> None:
    w = world
    subscribe_all(w)
    reply = w.client.post("/api/v1/chat", json={"session": w.web_session, "text": "退订 就业创业"}).json()
    assert "已退订“就业创业”" in reply["replies"][0]["text"]
    sessions = w.app.state.sessions
    subject = resolve(sessions, user=f"telegram:{TG_CHAT}")
    counts = erase_data(sessions, w.app.state.settings.secret_key, subject, by="test")
    assert counts.subscriptions == 1
    assert SubscriptionStore(sessions).tags_of("telegram", str(TG_CHAT)) == []
    w.publish("关于就业见习补贴的通知", "青人社〔2026〕10号", ["就业创业"])
    w.drain()
    assert not [t for t in w.web_messages() if "就业见习" in t]
    assert w.tg_texts("就业见习") == []
    users = {r.user_id for r in w.rows(kind="sub_policy")}
    assert users == {WX_ACCEPTS, WX_REFUSES, PARTNER}


def test_quiet_hours_hold_a_late_publication_until_eight(world: World) -> None:
    w = world
    store = SubscriptionStore(w.app.state.sessions)
    store.add("telegram", str(TG_CHAT), "就业")
    w.clock.now = dt.datetime(2026, 12, 2, 15, 0)  # 23:00 Beijing
    w.publish("关于创业担保贷款的通知", "青人社〔2026〕11号", ["就业创业"])
    (row,) = w.rows(kind="sub_policy")
    assert row.next_at == dt.datetime(2026, 12, 3, 0, 0)  # 08:00 Beijing the next morning
    tickets = w.app.state.tickets  # a staff reply at 23:00 is not held by the quiet hours
    t = tickets.open(question="创业担保贷款怎么申请", channel="telegram", user_ref=str(TG_CHAT))
    tickets.reply(t.no, staff="zhang", text="可向区就业促进中心申请。")
    (reply,) = w.rows(kind="ticket_reply")
    assert reply.next_at == w.clock.now
    w.drain()
    w.clock.now = dt.datetime(2026, 12, 2, 23, 59)  # 07:59
    w.drain()
    assert w.tg_texts("创业担保贷款") == []
    w.clock.now = dt.datetime(2026, 12, 3, 0, 0)  # 08:00
    w.drain()
    assert len(w.tg_texts("创业担保贷款")) == 1


@pytest.mark.parametrize("world", [{"push_daily_cap": 2}], indirect=True)
def test_daily_cap_moves_the_rest_to_the_next_day(world: World) -> None:
    w = world
    SubscriptionStore(w.app.state.sessions).add("telegram", str(TG_CHAT), "就业创业")
    for i in range(3):
        w.publish(f"就业政策第{i + 1}号通知", f"青人社〔2026〕2{i}号", ["就业创业"])
    w.drain()
    assert len(w.tg_texts("就业政策第")) == 2
    (held,) = w.rows(status="pending")
    assert held.next_at == dt.datetime(2026, 12, 3, 0, 0)
    w.clock.now = dt.datetime(2026, 12, 3, 0, 0)
    w.drain()
    assert len(w.tg_texts("就业政策第")) == 3


def test_answer_published_reaches_the_citizen_who_asked_once(world: World) -> None:
    w = world
    question = "灵活就业人员生育津贴怎么领取"
    r = w.client.post("/api/v1/sessions").json()
    w.web_session = r["session"]
    w.client.post("/api/v1/chat", json={"session": w.web_session, "text": question})
    w.chat("wechat", WX_ACCEPTS, question + "？")  # asked too, then erased: never told
    sessions = w.app.state.sessions
    erase_data(sessions, w.app.state.settings.secret_key, resolve(sessions, user=f"wechat:{WX_ACCEPTS}"))
    faqs = w.app.state.kb.faqs
    draft = faqs.add(
        by="staff",
        status="draft",
        question=question,
        answer="灵活就业人员按规定缴纳生育保险的，可在线申领生育津贴。",
        tags=[REPORT_TAG, week_tag("2026-W48"), "社保"],
        source_policy="青人社〔2026〕9号",
        allow_empty_answer=True,
    )
    faqs.publish(draft.id, by="staff", confirm_conflicts=True)
    (row,) = w.rows(kind="answer_published")
    assert row.channel == "web"
    w.drain()
    got = [t for t in w.web_messages() if "现在有了答复" in t]
    assert len(got) == 1 and "在线申领生育津贴" in got[0] and "依据" in got[0]
    faqs.retire(draft.id, by="staff")
    faqs.publish(draft.id, by="staff", confirm_conflicts=True)  # published again: no second notice
    w.drain()
    assert len(w.rows(kind="answer_published")) == 1
    assert len([t for t in w.web_messages() if "现在有了答复" in t]) == 1


def test_unknown_topic_lists_the_catalogue_and_my_subscriptions(world: World) -> None:
    w = world
    assert "可订阅的主题：就业创业、社会保障、教育" in w.chat("wechat", WX_ACCEPTS, "订阅 旅游")
    assert "还没有订阅" in w.chat("wechat", WX_ACCEPTS, "我的订阅")
    w.chat("wechat", WX_ACCEPTS, "订阅 社保")
    assert "社会保障" in w.chat("wechat", WX_ACCEPTS, "我的订阅")
    assert "您没有订阅“教育”" in w.chat("wechat", WX_ACCEPTS, "退订 教育")


def test_command_detection() -> None:
    assert command("订阅 就业") is not None and command("订阅 就业").tag == "就业"  # type: ignore[union-attr]
    assert command("/subscribe@policy_bot 社保").tag == "社保"  # type: ignore[union-attr]
    assert command("/unsubscribe 社保").action == "unsubscribe"  # type: ignore[union-attr]
    assert command("我的订阅").action == "list"  # type: ignore[union-attr]
    assert command("订阅").tag == ""  # type: ignore[union-attr]
    assert command("怎么订阅政策推送") is None
    assert command("订阅号怎么关注？") is None


def test_widget_subscriptions_api(db_url: str, tmp_path: Path) -> None:
    from bot.app import create_app

    app = create_app(make_settings(db_url, spool_dir=str(tmp_path / "spool")))
    client = TestClient(app)
    session = client.post("/api/v1/sessions").json()["session"]
    assert client.get("/api/v1/subscriptions", params={"session": session}).json() == {
        "topics": [],
        "tags": [],
    }
    catalogue(tmp_path, app.state.sessions)
    got = client.get("/api/v1/subscriptions", params={"session": session}).json()
    assert [t["tag"] for t in got["topics"]] == ["就业创业", "社会保障", "教育"] and got["tags"] == []
    r = client.put("/api/v1/subscriptions", json={"session": session, "tags": ["就业", "社保"]})
    assert r.status_code == 200 and r.json()["tags"] == ["就业创业", "社会保障"]
    assert [t["subscribed"] for t in r.json()["topics"]] == [True, True, False]
    bad = client.put("/api/v1/subscriptions", json={"session": session, "tags": ["旅游"]})
    assert bad.status_code == 422 and "可订阅的主题：就业创业、社会保障、教育" in bad.json()["detail"]
    assert client.get("/api/v1/subscriptions", params={"session": session}).json()["tags"] == [
        "就业创业",
        "社会保障",
    ]
    assert client.put("/api/v1/subscriptions", json={"session": session, "tags": []}).json()["tags"] == []
    forged = client.get("/api/v1/subscriptions", params={"session": "forged"})
    assert forged.status_code == 403 and forged.json()["detail"] == "会话无效，请重新开始对话。"


def test_quiet_hours_setting() -> None:
    from pydantic import ValidationError

    from bot.settings import Settings
    from bot.subscriptions import parse_quiet_hours

    assert parse_quiet_hours("22-8") == (22, 8) and parse_quiet_hours("0-6") == (0, 6)
    assert parse_quiet_hours("") is None and parse_quiet_hours("8-8") is None
    with pytest.raises(ValidationError, match="quiet hours"):
        Settings(push_quiet_hours="22:00-08:00")
