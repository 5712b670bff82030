"""The Telegram channel: PTB embedded in the app, updates posted to our webhook route, replies
observed at a fake Bot API server on 127.0.0.1 (PTB talks to it over real HTTP)."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, keyboard, split_text
from bot.conversation import Reply
from bot.notifier import PushImpossible
from knowledge.models import QueryLog
from tests.bot.conftest import delivered, make_settings
from tests.fakes.server import free_port, serve
from tests.fakes.telegram_api import BOT_USER, FakeTelegramState, create_fake_telegram

SECRET = "webhook-secret-0123456789"
CHAT = 777001
USER = {"id": CHAT, "is_bot": False, "first_name": "张", "language_code": "zh-hans"}
_ids = itertools.count(1)


@pytest.fixture
def fake_tg() -> Iterator[tuple[str, FakeTelegramState]]:
    app = create_fake_telegram()
    with serve(app) as url:
        yield url, app.state.fake


@pytest.fixture
def tg_app(demo_url: str, fake_tg: tuple[str, FakeTelegramState]) -> FastAPI:
    url, fake = fake_tg
    return create_app(
        make_settings(
            demo_url, telegram_token=fake.token, telegram_webhook_secret=SECRET, telegram_api_base=url
        )
    )


@pytest.fixture
def client(tg_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(tg_app) as c:
        yield c


def message_update(text: str, *, chat: int = CHAT, update_id: int | None = None) -> dict[str, Any]:
    uid = update_id if update_id is not None else next(_ids)
    msg: dict[str, Any] = {
        "message_id": uid,
        "date": int(time.time()),
        "from": {**USER, "id": chat},
        "chat": {"id": chat, "type": "private", "first_name": "张"},
        "text": text,
    }
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": uid, "message": msg}


def post(client: TestClient, update: dict[str, Any], secret: str | None = SECRET) -> Any:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/telegram/webhook", json=update, headers=headers)


def wait_sent(
    fake: FakeTelegramState, n: int, chat: int = CHAT, timeout: float = 10.0
) -> list[dict[str, Any]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sent = fake.sent(chat)
        if len(sent) >= n:
            return sent
        time.sleep(0.02)
    raise AssertionError(f"expected {n} sendMessage calls, got {fake.sent(chat)}")


def say(client: TestClient, fake: FakeTelegramState, text: str) -> list[dict[str, Any]]:
    """Send one message; wait for the bot's replies to it (the new sendMessage calls)."""
    before = len(fake.sent(CHAT))
    assert post(client, message_update(text)).json()["ok"] is True
    wait_sent(fake, before + 1)
    time.sleep(0.15)  # a reply may have several messages
    return fake.sent(CHAT)[before:]


def test_webhook_secret_is_checked(
    client: TestClient, tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    assert post(client, message_update("依申请公开多久答复"), secret=None).status_code == 403
    assert post(client, message_update("依申请公开多久答复"), secret="wrong").status_code == 403
    assert post(client, message_update("依申请公开多久答复"), secret=SECRET[:-1]).status_code == 403
    time.sleep(0.2)
    assert fake.sent() == []
    with tg_app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(QueryLog)) == 0


def test_bad_updates_are_400(client: TestClient) -> None:
    h = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert client.post("/telegram/webhook", content=b"{not json", headers=h).status_code == 400
    assert client.post("/telegram/webhook", json=[1, 2], headers=h).status_code == 400
    assert client.post("/telegram/webhook", json={"message": {}}, headers=h).status_code == 400


def test_text_question_gets_answer(client: TestClient, fake_tg: tuple[str, FakeTelegramState]) -> None:
    _, fake = fake_tg
    replies = say(client, fake, "依申请公开多久答复")
    assert "20个工作日" in replies[0]["text"]
    assert "getMe" in fake.methods()


def test_duplicate_update_is_processed_once(
    client: TestClient, tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    update = message_update("依申请公开多久答复")
    assert post(client, update).status_code == 200
    assert post(client, update).json().get("duplicate") is True
    wait_sent(fake, 1)
    time.sleep(0.3)
    assert len(fake.sent(CHAT)) == 1
    with tg_app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(QueryLog)) == 1


def test_start_welcome_buttons_and_callback(
    client: TestClient, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    welcome = say(client, fake, "/start")[0]
    assert "政策咨询" in welcome["text"]
    rows = welcome["reply_markup"]["inline_keyboard"]
    assert [r[0]["callback_data"] for r in rows] == [str(i) for i in range(len(rows))]
    chosen = rows[0][0]["text"]
    bot_message = {
        "message_id": 99,
        "date": int(time.time()),
        "from": BOT_USER,
        "chat": {"id": CHAT, "type": "private"},
        "text": welcome["text"],
        "reply_markup": welcome["reply_markup"],
    }
    before = len(fake.sent(CHAT))
    update = {
        "update_id": next(_ids),
        "callback_query": {
            "id": "cbq-1",
            "from": USER,
            "chat_instance": "ci",
            "data": "0",
            "message": bot_message,
        },
    }
    assert post(client, update).status_code == 200
    answers = wait_sent(fake, before + 1)[before:]
    assert "answerCallbackQuery" in fake.methods()
    assert answers[0]["text"] and "请直接输入" not in answers[0]["text"]
    assert chosen  # the answer is to the chosen suggestion, asked as text
    stale = {
        "update_id": next(_ids),
        "callback_query": {
            "id": "cbq-2",
            "from": USER,
            "chat_instance": "ci",
            "data": "9",
            "message": bot_message,
        },
    }
    post(client, stale)
    assert "已失效" in wait_sent(fake, before + 2)[-1]["text"]


def test_clarify_suggestions_become_buttons() -> None:
    markup = keyboard(["甲", "乙", "丙"])
    assert markup is not None
    assert [[b.callback_data for b in row] for row in markup.inline_keyboard] == [["0"], ["1"], ["2"]]
    assert keyboard([]) is None
    assert [len(p) for p in split_text("字" * 5000)] == [4096, 904]


def test_non_text_gets_polite_reply(client: TestClient, fake_tg: tuple[str, FakeTelegramState]) -> None:
    _, fake = fake_tg
    update = message_update("x")
    del update["message"]["text"]
    update["message"]["sticker"] = {
        "file_id": "f",
        "file_unique_id": "u",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    post(client, update)
    assert "文字" in wait_sent(fake, 1)[0]["text"]


def test_end_to_end_ticket_reply_is_pushed_with_send_message(
    client: TestClient, tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    say(client, fake, "我家楼下的共享单车乱停放谁来管")
    assert any("匿名" in r["text"] for r in say(client, fake, "留言"))
    opened = " ".join(r["text"] for r in say(client, fake, "匿名"))
    m = re.search(r"LY\d{8}-\d{3,6}", opened)
    assert m, opened
    no = m.group(0)
    status = say(client, fake, f"/status {no}")[0]["text"]
    assert no in status and "待受理" in status
    tg_app.state.tickets.reply(no, staff="王科员", text="共享单车停放由街道城管中队负责。")
    delivered(tg_app)
    pushed = fake.sent(CHAT)[-1]
    assert no in pushed["text"] and "城管中队" in pushed["text"]
    delivery = [e for e in tg_app.state.tickets.events(no) if e.action == "delivery"][-1]
    assert delivery.detail["ok"] is True
    # rated where it arrives: 满意 / 基本满意 / 不满意 buttons under the pushed reply
    buttons = [b for row in pushed["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["满意", "基本满意", "不满意"]
    assert [b["callback_data"] for b in buttons] == [f"rate:{no}:1", f"rate:{no}:2", f"rate:{no}:3"]
    before = len(fake.sent(CHAT))
    bot_message = {
        "message_id": 100,
        "date": int(time.time()),
        "from": BOT_USER,
        "chat": {"id": CHAT, "type": "private"},
        "text": pushed["text"],
        "reply_markup": pushed["reply_markup"],
    }
    update = {
        "update_id": next(_ids),
        "callback_query": {
            "id": "cbq-r",
            "from": USER,
            "chat_instance": "ci",
            "data": f"rate:{no}:3",
            "message": bot_message,
        },
    }
    assert post(client, update).status_code == 200
    assert "重新交给工作人员" in wait_sent(fake, before + 1)[-1]["text"]
    t = tg_app.state.tickets.get(no)
    assert t.rating == "不满意" and t.status == "办理中" and t.flagged


def test_push_to_blocked_user_is_recorded_impossible(
    tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    fake.blocked.add(5150)
    channel: TelegramChannel = tg_app.state.channels["telegram"]
    with pytest.raises(PushImpossible):
        channel.push("5150", Reply("status", "答复"))
    fake.fail_next = [502]
    with pytest.raises(Exception) as err:
        channel.push(str(CHAT), Reply("status", "答复"))
    assert not isinstance(err.value, PushImpossible)  # a server error is worth retrying
    channel.push(str(CHAT), Reply("status", "答复"))
    assert fake.sent(CHAT)[-1]["text"] == "答复"
    channel.close()


def test_set_webhook_and_polling_mode(tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]) -> None:
    _, fake = fake_tg
    channel: TelegramChannel = tg_app.state.channels["telegram"]
    assert channel.set_webhook("https://bot.example.gov.cn/telegram/webhook")
    assert fake.webhook == {"url": "https://bot.example.gov.cn/telegram/webhook", "secret_token": SECRET}
    channel.close()
    fake.updates.append(message_update("依申请公开多久答复", chat=4242))

    async def poll() -> None:
        app = channel.build_application(polling=True)
        async with app:
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=0)
            await app.start()
            end = time.monotonic() + 10
            while not fake.sent(4242) and time.monotonic() < end:
                await asyncio.sleep(0.05)
            await app.updater.stop()
            await app.stop()

    asyncio.run(poll())
    assert "deleteWebhook" in fake.methods()
    assert "20个工作日" in fake.sent(4242)[0]["text"]


def test_application_runs_on_the_servers_loop_for_the_lifespan(
    tg_app: FastAPI, fake_tg: tuple[str, FakeTelegramState]
) -> None:
    _, fake = fake_tg
    channel: TelegramChannel = tg_app.state.channels["telegram"]
    assert not channel.application.running  # nothing starts before the server does
    with TestClient(tg_app) as client:
        say(client, fake, "依申请公开多久答复")
        assert channel.application.running
        names = [t.name for t in threading.enumerate()]
        assert not any("telegram-loop" in n for n in names), names  # no private loop thread
    assert not channel.application.running  # stopped with the server


def test_bot_api_down_at_start_does_not_stop_the_server(demo_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = create_app(
        make_settings(
            demo_url, telegram_token="1:dead", telegram_webhook_secret=SECRET, telegram_api_base=dead
        )
    )
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/v1/sessions", json={}).status_code == 200  # the widget still works
        refused = post(client, message_update("依申请公开多久答复"))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"  # Telegram retries
        with pytest.raises(Exception) as err:
            app.state.channels["telegram"].push(str(CHAT), Reply("status", "答复"))
        assert not isinstance(err.value, PushImpossible)  # the outbox retries later
        assert "1:dead" not in str(err.value)  # the token never reaches the delivery's error text
