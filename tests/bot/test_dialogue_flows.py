"""The conversation of a good window clerk, end to end through the in-process memory channel and the
Inbox (and the widget's JSON API where the flow is the widget's): small talk, honest scope, requests
for a person with the category preset, follow-ups, 没用 leading somewhere, rating a staff reply where
it arrives (text channels: 1/2/3; the widget: its own endpoint), sensitive words, one citation and one
ticket card."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import texts
from bot.channels.memory import MemoryChannel
from knowledge.models import QueryLog
from tests.bot.conftest import delivered

NO = re.compile(r"LY\d{8}-\d{4}")


def chat(app: FastAPI, user: str = "c1") -> MemoryChannel:
    channel = MemoryChannel(app.state.inbox, user_id=user)
    app.state.outbox.channels[channel.name] = channel  # staff replies are pushed to it
    return channel


def logged(app: FastAPI) -> list[QueryLog]:
    with app.state.sessions() as s:
        return list(s.scalars(select(QueryLog).order_by(QueryLog.id)))


def test_greetings_thanks_and_emoji_get_small_talk_not_passages_or_the_form(app: FastAPI) -> None:
    c = chat(app)
    for greeting in ("你好", "请问", "hello", "在吗", "有人吗？"):
        replies = c.ask(greeting)
        assert [r.kind for r in replies] == ["text"], greeting
        assert replies[0].suggestions and len(replies[0].suggestions) <= 3  # popular questions
        assert "1. " in replies[0].text  # numbered on a text channel
    for other, key in (("谢谢", "thanks"), ("再见", "farewell"), ("👍", "emoji"), ("真棒", "praise")):
        replies = c.ask(other)
        assert [r.kind for r in replies] == ["text"] and replies[0].text == texts.say(f"smalltalk.{key}")
    assert logged(app) == []  # small talk is not a question: nothing for the weekly report
    assert app.state.tickets.list() == []


def test_a_greeting_with_a_question_is_answered(app: FastAPI) -> None:
    assert chat(app).ask("你好，请问依申请公开多久答复")[0].kind == "answer"


def test_chit_chat_is_honestly_out_of_scope_and_reaches_no_staff(app: FastAPI) -> None:
    c = chat(app)
    replies = c.ask("今天天气怎么样")
    assert [r.kind for r in replies] == ["text"]
    assert "不在政策咨询的范围内" in replies[0].text and replies[0].suggestions
    assert "回复“留言”" not in replies[0].text and replies[0].form is None
    assert [r.outcome for r in logged(app)] == ["out_of_scope"]
    # a policy question the knowledge base does not cover still gets the staff form
    replies = c.ask("灵活就业人员社保怎么交")
    assert replies[-1].kind == "handoff_offer" and "不在政策咨询的范围内" not in replies[-1].text


def test_asking_for_a_person_opens_the_form_at_once_with_the_category(
    app: FastAPI, client: TestClient
) -> None:
    c = chat(app)
    out = c.ask("转人工")
    assert out[0].kind == "handoff_offer" and out[0].category == "咨询"
    assert "描述您要咨询的问题" in out[0].text
    assert "收到" in c.say("窗口的办事流程能不能再简化一些")
    assert NO.search(c.say("匿名"))
    c2 = chat(app, "c2")
    assert c2.ask("我要投诉")[0].category == "投诉"
    c2.say("窗口工作人员态度很差")
    no = NO.search(c2.say("匿名"))
    assert no and app.state.tickets.get(no.group(0)).category == "投诉"
    # the widget: the form at once, category preset, and the form's category is stored
    r = client.post("/api/v1/chat", json={"text": "我要举报"}).json()
    (offer,) = r["replies"]
    assert offer["form"] == "handoff" and offer["category"] == "举报"
    t = client.post(
        "/api/v1/tickets", json={"session": r["session"], "question": "有人冒领补贴", "category": "举报"}
    ).json()
    assert app.state.tickets.get(t["ticket_no"]).category == "举报"


def test_one_ticket_card(app: FastAPI) -> None:
    c = chat(app)
    c.ask("我要留言")
    c.say("社区的政策宣传栏很久没更新了")
    out = c.say("匿名")
    no = NO.search(out)
    assert no
    t = app.state.tickets.get(no.group(0))
    assert out.count(t.no) == 1 and out.count(t.verify_code) == 1
    assert out.count("查询码") == 2 and "验证码" not in out  # the field, and where to use it: one name
    assert out.count(f"{t.due_date.year}年{t.due_date.month}月{t.due_date.day}日") == 1
    assert not re.search(r"\d{4}-\d{2}-\d{2}", out)  # one date format


def test_follow_up_is_asked_in_the_topic_of_the_last_answer(app: FastAPI) -> None:
    c = chat(app)
    assert c.ask("依申请公开的办理过程能追溯吗")[0].faq_id == "demo-033"
    follow = c.ask("那要多久")
    assert "接着“依申请公开”" in follow[0].text
    offered = follow[0].faq_id == "demo-001" or "依申请公开多久答复" in follow[0].suggestions
    assert offered, follow[0]
    # an uncovered follow-up says which topic it looked in and offers the staff
    c.ask("依申请公开多久答复")
    uncovered = c.ask("需要带什么材料")
    assert uncovered[-1].kind == "handoff_offer" and "关于“依申请公开”" in uncovered[-1].text
    # a new topic resets it
    new = c.ask("政府公报可以电子订阅吗")
    assert new[0].faq_id == "demo-042" and "接着" not in new[0].text


def test_useless_offers_next_best_and_the_staff_in_the_same_bubble(app: FastAPI, client: TestClient) -> None:
    c = chat(app)
    c.ask("依申请公开多久答复")
    (bubble,) = c.ask("没用")
    assert bubble.kind == "handoff_offer" and bubble.suggestions
    assert "demo-001" not in str(bubble.suggestions) and "依申请公开多久答复" not in bubble.suggestions
    assert "1. " in bubble.text and "留言" in bubble.text
    assert logged(app)[-1].rating == "useless"
    # picking a next-best question answers it
    picked = c.ask("1")
    assert picked[0].kind == "answer" and picked[0].faq_id not in (None, "demo-001")
    # the widget's 没用 button: the same bubble (suggestions and the form) in the rating's answer
    r = client.post("/api/v1/chat", json={"text": "依申请公开多久答复"}).json()
    answer = r["replies"][0]
    rated = client.post(
        "/api/v1/rate", json={"session": r["session"], "ref": answer["ref"], "rating": "useless"}
    ).json()
    assert rated["ok"] and rated["reply"]["form"] == "handoff" and rated["reply"]["suggestions"]
    again = client.post(
        "/api/v1/rate", json={"session": r["session"], "ref": answer["ref"], "rating": "useful"}
    ).json()
    assert again["ok"] is False


def _replied_ticket(app: FastAPI, c: MemoryChannel, question: str) -> str:
    c.ask("我要留言")
    c.say(question)
    m = NO.search(c.say("匿名"))
    assert m
    app.state.tickets.reply(m.group(0), staff="王科员", text="已转交街道办理，请留意通知。")
    delivered(app)
    return m.group(0)


def test_staff_reply_is_rated_where_it_arrives(app: FastAPI) -> None:
    c = chat(app)
    no = _replied_ticket(app, c, "社区宣传栏很久没更新")
    ((user, pushed),) = c.pushed
    assert user == c.user_id and pushed.rate_ticket == no and pushed.text.count(no) == 1
    assert "感谢您的评价" in c.say("1")  # "回复 1/2/3"
    t = app.state.tickets.get(no)
    assert t.rating == "满意" and t.status == "已办结"
    assert "已评价" in c.say(f"评价 {no} 3")  # once, as on the board


def test_unsatisfied_rating_reopens_for_a_supervisor(app: FastAPI) -> None:
    c = chat(app, "c3")
    no = _replied_ticket(app, c, "小区门口的公告栏信息过期了")
    out = c.say(f"评价 {no} 不满意")  # what Telegram's buttons send
    assert "重新交给工作人员" in out
    t = app.state.tickets.get(no)
    assert t.rating == "不满意" and t.status == "办理中" and t.flagged and t.flag_reason == "不满意"
    # nobody else can rate it
    assert "没有找到" in chat(app, "intruder").say(f"评价 {no} 1")


def test_widget_rates_a_pushed_staff_reply(app: FastAPI, client: TestClient) -> None:
    s = client.post("/api/v1/sessions", json={}).json()["session"]
    t = client.post("/api/v1/tickets", json={"session": s, "question": "政策宣传栏多久更新一次"}).json()
    app.state.tickets.reply(t["ticket_no"], staff="王科员", text="每月更新。")
    delivered(app)
    pushed = client.get("/api/v1/messages", params={"session": s}).json()["replies"]
    assert pushed[-1]["rate_ticket"] == t["ticket_no"]
    other = client.post("/api/v1/sessions", json={}).json()["session"]
    refused = client.post(f"/api/v1/tickets/{t['ticket_no']}/rate", json={"session": other, "rating": "满意"})
    assert refused.json()["ok"] is False
    rated = client.post(f"/api/v1/tickets/{t['ticket_no']}/rate", json={"session": s, "rating": "基本满意"})
    assert rated.json()["ok"] is True and app.state.tickets.get(t["ticket_no"]).rating == "基本满意"


def test_sensitive_word_gets_no_answer_but_a_flagged_ticket_masked_on_the_board(
    app: FastAPI, client: TestClient
) -> None:
    words = app.state.sensitive
    assert words.list() == []  # the list ships empty
    words.add("示例敏感词")
    c = chat(app)
    out = c.ask("依申请公开多久答复，示例 敏感词")
    assert [r.kind for r in out] == ["ticket_opened"] and "不作自动答复" in out[0].text
    t = app.state.tickets.get(out[0].ticket_no or "")
    assert t.flagged and t.flag_reason == "敏感词"
    assert logged(app) == []  # not an answered question
    app.state.tickets.reply(t.no, staff="负责人", text="已收到。")
    app.state.tickets.publish(t.no, by="负责人")
    board = client.get("/board").text
    assert t.no in board and "敏感词" not in board.replace("示例＊", "") and "＊＊＊" in board


def test_empty_voice_recognition_line_is_one_short_line() -> None:
    line = texts.say("voice.unrecognised")
    assert "\n" not in line and "语音" in line and "菜单" in line
