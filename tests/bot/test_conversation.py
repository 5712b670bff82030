"""The conversation end to end through the in-process memory channel, on the demo knowledge base."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select, text

from bot.channels.memory import MemoryChannel
from bot.conversation import APOLOGY
from knowledge.models import QueryLog


def chat(app: FastAPI, user: str = "u1") -> MemoryChannel:
    return MemoryChannel(app.state.inbox, user_id=user)


def test_answer_with_source_and_rating_prompt(app: FastAPI) -> None:
    c = chat(app)
    replies = c.ask("依申请公开多长时间答复")
    assert replies[0].kind == "answer"
    assert "20" in replies[0].text and "工作日" in replies[0].text
    # one citation: the FAQ text names its source, so no second 来源 line is appended
    assert replies[0].text.count("青人社〔2023〕11号") == 1 and "来源：" not in replies[0].text
    assert (
        replies[0].sources and replies[0].sources[0]["article"] == "二(二)" and len(replies[0].sources) == 1
    )
    assert "有用" in replies[0].text  # text channels are asked for a rating in words


def test_filler_and_traditional_characters(app: FastAPI) -> None:
    c = chat(app)
    assert c.ask("你好，请问一下依申請公開多久答覆啊？")[0].kind == "answer"


def test_rating_in_words_is_logged(app: FastAPI) -> None:
    c = chat(app)
    c.ask("依申请公开多长时间答复")
    out = c.say("没用")
    assert "抱歉没能帮上忙" in out and "留言" in out
    with app.state.sessions() as s:
        row = s.scalars(select(QueryLog).order_by(QueryLog.id.desc())).first()
    assert row is not None and row.rating == "useless"


def test_unknown_question_offers_handoff_and_text_flow_opens_ticket(app: FastAPI) -> None:
    c = chat(app)
    replies = c.ask("我家楼下的共享单车乱停放谁来管，电话13812345678")
    assert replies[-1].kind == "handoff_offer"
    out = c.say("留言")
    assert "同意" in out and "匿名" in out
    out = c.say("同意 张三 13812345678")
    m = re.search(r"LY\d{8}-\d{4}", out)
    assert m, out
    ticket = app.state.tickets.get(m.group(0))
    assert ticket.contact_phone and ticket.contact_phone.endswith("12345678")
    assert "13812345678" not in ticket.question  # masked outside the contact fields
    with app.state.sessions() as s:
        logged = [r.text for r in s.scalars(select(QueryLog))]
    assert logged and all("13812345678" not in t for t in logged)
    status = c.say(f"查询 {m.group(0)}")
    assert "待受理" in status
    # another user cannot read it
    assert "没有找到" in chat(app, "someone-else").say(f"查询 {m.group(0)}")


def test_anonymous_ticket_and_cancel(app: FastAPI) -> None:
    c = chat(app)
    c.ask("退休人员去世后丧葬补助金怎么申领")
    assert "已取消" in (c.say("留言"), c.say("取消"))[1]
    c.say("留言")
    assert re.search(r"LY\d{8}-\d{4}", c.say("匿名"))
    # the offer is over once the ticket is open: repeating the word opens no second ticket
    assert not re.search(r"LY\d{8}-\d{4}", c.say("匿名"))
    assert len(app.state.tickets.list()) == 1


def test_reset_gives_welcome_with_top_questions(app: FastAPI) -> None:
    c = chat(app)
    replies = c.ask("重新开始")
    assert replies[0].suggestions and "1." in replies[0].text


def test_state_survives_a_new_process(app: FastAPI, demo_url: str) -> None:
    from bot.app import create_app
    from tests.bot.conftest import make_settings

    chat(app, "u9").ask("留言")
    other = create_app(make_settings(demo_url))
    out = MemoryChannel(other.state.inbox, "u9").say("取消")
    assert "已取消" in out


def test_bad_input_gets_a_clear_reply(app: FastAPI) -> None:
    c = chat(app)
    for junk in [
        "",
        "   ",
        "\x00\x01\x02",
        "😀😀😀",
        "'; DROP TABLE faq; --",
        "政" * 20000,
        "hello 社保 policy?",
    ]:
        replies = c.ask(junk)
        assert replies and all(r.text for r in replies)
        assert all(r.text != APOLOGY for r in replies)


def test_database_failure_is_an_apology_not_a_crash(app: FastAPI) -> None:
    app.state.inbox.spool = app.state.inbox.intents.spool = None  # without the degraded mode (bot/spool.py)
    with app.state.engine.begin() as conn:
        conn.execute(text("DROP TABLE chat_session"))
    replies = MemoryChannel(app.state.inbox, "u2").ask("依申请公开多长时间答复")
    assert [r.text for r in replies] == [APOLOGY]


def test_database_failure_degraded_answer_then_replayed(app: FastAPI) -> None:
    """With the spool, a broken session store still gets the answer; its log entry is replayed."""
    spool = app.state.spool
    with app.state.engine.begin() as conn:
        conn.execute(text("DROP TABLE chat_session"))
    replies = MemoryChannel(app.state.inbox, "u3").ask("依申请公开多长时间答复")
    assert replies[0].kind == "answer" and replies[0].ref is None
    assert spool.pending_files()
    with app.state.sessions() as s:
        before = len(list(s.scalars(select(QueryLog))))
    assert spool.replay() == 1
    assert not spool.pending_files()
    with app.state.sessions() as s:
        rows = list(s.scalars(select(QueryLog)))
    assert len(rows) == before + 1 and rows[-1].outcome == "answer"
