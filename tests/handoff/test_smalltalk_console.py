"""The console's 寒暄语 page (admins only): phrases added and removed and replies changed there are what
the in-process test channel answers next; bad input gets a clear Chinese error and changes nothing;
every change is audited; reset brings back the built-in table."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot import texts
from bot.app import create_app
from bot.channels.memory import MemoryChannel
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

PAGE = "/console/admin/smalltalk"


def _post(admin: TestClient, path: str, token: str, **data: str) -> object:
    return admin.post(PAGE + path, headers=ORIGIN, data={"csrf": token, **data}, follow_redirects=False)


def _world(demo_url: str) -> tuple[FastAPI, TestClient, str]:  # noqa: F811
    app: FastAPI = create_app(make_settings(demo_url))
    make_users(app, "政务公开办公室")
    admin = signed_in(app, "admin")
    return app, admin, csrf(admin, PAGE)


def test_edits_in_the_console_change_what_the_bot_answers(demo_url: str) -> None:  # noqa: F811
    app, admin, token = _world(demo_url)
    chat = MemoryChannel(app.state.inbox, "st-1")
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert "问候" in page.text and "纯表情" in page.text and "谢谢您" in page.text
    greeting = texts.TEXTS["smalltalk.greeting"]
    assert not chat.say("吃了吗").startswith(greeting)  # not small talk yet

    r = _post(admin, "/greeting/phrases", token, phrase=" 吃了吗？ ")
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert chat.say("吃了吗").startswith(greeting)  # the same process sees its own edit at once
    assert "吃了吗" in admin.get(PAGE).text and "已修改" in admin.get(PAGE).text

    r = _post(admin, "/thanks/reply", token, reply="不用谢，欢迎随时来问。")
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert chat.say("谢谢") == "不用谢，欢迎随时来问。"

    assert chat.say("拜拜") == texts.TEXTS["smalltalk.farewell"]
    r = _post(admin, "/farewell/phrases/delete", token, phrase="拜拜")
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert chat.say("拜拜") != texts.TEXTS["smalltalk.farewell"]
    assert chat.say("再见") == texts.TEXTS["smalltalk.farewell"]  # the other phrases stay

    r = _post(admin, "/emoji/reply", token, reply="收到您的表情啦，有问题请直接打字问我。")
    assert chat.say("👍👍") == "收到您的表情啦，有问题请直接打字问我。"

    audit = admin.get("/console/audit").text
    for label in ("添加寒暄短语", "修改寒暄回复", "删除寒暄短语"):
        assert label in audit

    r = _post(admin, "/thanks/reset", token)
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert chat.say("谢谢") == texts.TEXTS["smalltalk.thanks"]
    assert chat.say("吃了吗").startswith(greeting)  # other intents keep their edits
    assert "恢复默认寒暄语" in admin.get("/console/audit").text


def test_bad_input_gets_a_clear_chinese_error_and_changes_nothing(demo_url: str) -> None:  # noqa: F811
    app, admin, token = _world(demo_url)
    cases = [
        ("/greeting/phrases", {"phrase": "  ，。 "}, "短语不能为空"),
        ("/greeting/phrases", {"phrase": "你好请问一下政府信息公开怎么申请"}, "最多12个字"),
        ("/greeting/phrases", {"phrase": "谢谢！"}, "已属于“感谢”"),
        ("/thanks/phrases", {"phrase": "多谢"}, "已在“感谢”中"),
        ("/emoji/phrases", {"phrase": "哈哈"}, "不需要添加短语"),
        ("/thanks/reply", {"reply": "   "}, "回复不能为空"),
        ("/thanks/reply", {"reply": "好" * 301}, "最多300个字"),
        ("/farewell/phrases/delete", {"phrase": "不存在的短语"}, "没有短语"),
    ]
    for path, data, message in cases:
        r = _post(admin, path, token, **data)
        assert r.status_code in (400, 404), (path, r.status_code)  # type: ignore[attr-defined]
        assert message in r.text, (path, r.text[-400:])  # type: ignore[attr-defined]
        assert "Traceback" not in r.text  # type: ignore[attr-defined]
    unknown = _post(admin, "/weather/phrases", token, phrase="天气")
    assert unknown.status_code in (400, 404) and "没有这一类寒暄语" in unknown.text  # type: ignore[attr-defined]
    assert all(not e.edited for e in app.state.smalltalk.entries())  # nothing was stored

    store = app.state.smalltalk  # the last phrase of an intent cannot be removed
    who = next(e for e in store.entries() if e.intent == "who")
    for phrase in who.phrases[:-1]:
        store.remove_phrase("who", phrase)
    r = _post(admin, "/who/phrases/delete", token, phrase=who.phrases[-1])
    assert r.status_code == 400 and "至少保留一个短语" in r.text  # type: ignore[attr-defined]


def test_only_admins_and_only_with_csrf(demo_url: str) -> None:  # noqa: F811
    app, admin, _token = _world(demo_url)
    assert signed_in(app, "alice").get(PAGE).status_code == 403
    r = admin.post(PAGE + "/thanks/reply", headers=ORIGIN, data={"csrf": "forged", "reply": "x"})
    assert r.status_code == 403
    assert all(not e.edited for e in app.state.smalltalk.entries())
