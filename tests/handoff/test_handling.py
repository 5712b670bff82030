"""Ticket handling on the real app (SQLite, and PostgreSQL when DATABASE_URL names one): the category
chosen in the widget form and changed by staff, interim replies through the outbox, duplicate hints
and merging (one answer per citizen through the outbox, audited, CLI), search by number, phone and
name (audited as a contact search, phones masked), bulk actions checked per ticket, canned replies
on the ticket page, a reopened ticket leaving the public board, the admin's read-only queue and the
history showing names once."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.models import Delivery
from bot.notifier import render_delivery
from handoff.models import AuditEntry, ReplyTemplate
from knowledge.models import CHINA_TZ
from tests.bot.conftest import make_settings
from tests.handoff.console_helpers import ORIGIN, OTHER_DEPT, csrf, make_users, signed_in

DEPT = "区发展改革委"
PHONE = "13912345678"


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    application = create_app(make_settings(db_url, demo=False))
    yield application
    application.state.engine.dispose()


def _open(app: FastAPI, question: str, user: str, **kw: Any) -> Any:
    return app.state.tickets.open(question=question, channel="web", user_ref=user, department=DEPT, **kw)


@pytest.fixture
def world(app: FastAPI) -> dict[str, Any]:
    from handoff.console.auth import Accounts
    from handoff.console.config import ConsoleConfig

    acc = Accounts(app.state.sessions, ConsoleConfig(secret_key="test-secret"))
    for name in (DEPT, OTHER_DEPT):
        acc.add_department(name)
    a = _open(
        app, "小微企业房租补贴怎么申请？", "u-1", contact_name="王五", contact_phone=PHONE, consent=True
    )
    b = _open(app, "小微企业房租补贴怎么申请", "u-1")  # the same citizen again
    c = _open(app, "请问小微企业的房租补贴如何申请？", "u-2")  # another citizen, same question
    d = _open(app, "公园里的路灯坏了", "u-3")
    make_users(app, DEPT)
    return {"a": a, "b": b, "c": c, "d": d}


def _post(client: TestClient, path: str, **data: Any) -> Any:
    data.setdefault("csrf", csrf(client))
    return client.post(path, headers=ORIGIN, data=data, follow_redirects=False)


def _audit(app: FastAPI, action: str) -> list[AuditEntry]:
    with app.state.sessions() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def _deliveries(app: FastAPI) -> list[Delivery]:
    with app.state.sessions() as s:
        return list(s.execute(select(Delivery).order_by(Delivery.id)).scalars())


# --- categories ------------------------------------------------------------------------------------


def test_category_from_the_form_and_changed_by_staff(app: FastAPI, world: dict[str, Any]) -> None:
    from bot.talk import person_request

    assert person_request("我要求助") == ("求助", None)
    web = TestClient(app)
    session = web.post("/api/v1/chat", json={"text": "你好"}).json()["session"]
    made = web.post(
        "/api/v1/tickets",
        json={"session": session, "question": "家里老人行动不便想申请上门服务", "category": "求助"},
    )
    assert made.status_code == 200, made.text
    assert app.state.tickets.get(made.json()["ticket_no"]).category == "求助"
    bad = web.post(
        "/api/v1/tickets", json={"session": session, "question": "测试留言内容", "category": "闲聊"}
    )
    assert bad.status_code == 422

    a = world["a"]
    alice = signed_in(app, "alice")
    page = alice.get(f"/console/tickets/{a.no}").text
    assert f'action="/console/tickets/{a.no}/category"' in page and '<option value="求助"' in page
    r = _post(alice, f"/console/tickets/{a.no}/category", version=a.version, value="投诉")
    assert r.status_code == 303
    assert app.state.tickets.get(a.no).category == "投诉"
    page = alice.get(f"/console/tickets/{a.no}").text
    assert "修改留言类型" in page and "咨询 → 投诉" in page
    (entry,) = _audit(app, "category")
    assert entry.actor == "alice" and entry.target == a.no
    assert (entry.detail["from"], entry.detail["to"]) == ("咨询", "投诉")
    r = _post(alice, f"/console/tickets/{a.no}/category", version=a.version + 1, value="闲聊")
    assert r.status_code == 400 and "留言类型应为" in r.text
    bob = signed_in(app, "bob")  # another department: as if the ticket did not exist
    assert _post(bob, f"/console/tickets/{a.no}/category", version=1, value="建议").status_code == 404


# --- interim reply ---------------------------------------------------------------------------------


def test_interim_reply_goes_through_the_outbox_and_keeps_the_ticket_open(
    app: FastAPI, world: dict[str, Any]
) -> None:
    a = world["a"]
    alice = signed_in(app, "alice")
    r = _post(
        alice,
        f"/console/tickets/{a.no}/interim",
        version=a.version,
        text="您反映的情况正在核实，请耐心等待。",
    )
    assert r.status_code == 303
    t = app.state.tickets.get(a.no)
    assert t.status == "待受理" and t.reply is None and t.replied_at is None and t.due_date == a.due_date
    (row,) = [d for d in _deliveries(app) if d.kind == "ticket_interim"]
    assert row.channel == "web" and row.user_id == "u-1" and row.data["ticket_no"] == a.no
    from bot.pipeline.outbox import _view

    reply = render_delivery(_view(row))
    assert "正在办理中" in reply.text and "正在核实" in reply.text and a.no in reply.text
    assert reply.rate_ticket is None  # nothing to rate yet
    page = alice.get(f"/console/tickets/{a.no}").text
    assert "阶段性答复" in page and "正在核实" in page
    assert [e.action for e in app.state.tickets.events(a.no)][-1] == "interim"
    assert _audit(app, "interim")[0].target == a.no
    # the citizen with the code sees it on the board; the public list does not
    board = TestClient(app)
    form = board.get(f"/board/{a.no}").text
    token = re.search(r'name="token" value="([^"]+)"', form)
    assert token
    own = board.post(f"/board/{a.no}", headers=ORIGIN, data={"code": a.verify_code, "token": token.group(1)})
    assert own.status_code == 200 and "办理进展" in own.text and "正在核实" in own.text
    assert "正在核实" not in board.get("/board").text
    # a closed ticket takes no interim reply
    app.state.tickets.reply(a.no, staff="alice", text="可向区发改委申请。")
    r = _post(
        alice, f"/console/tickets/{a.no}/interim", version=app.state.tickets.get(a.no).version, text="x"
    )
    assert r.status_code == 400 and "不能发送阶段性答复" in r.text


# --- duplicates and merge --------------------------------------------------------------------------


def test_duplicate_hint_and_merge_give_one_answer_per_citizen(app: FastAPI, world: dict[str, Any]) -> None:
    a, b, c, d = world["a"], world["b"], world["c"], world["d"]
    alice = signed_in(app, "alice")
    page = alice.get(f"/console/tickets/{a.no}").text
    hints = page.split('id="duplicates"', 1)[1].split("</section>", 1)[0]
    assert b.no in hints and "同一留言人" in hints
    assert c.no in hints and "内容相似度" in hints
    assert d.no not in hints  # another question of another citizen
    # merge b and c into a
    assert _post(alice, f"/console/tickets/{b.no}/merge", version=b.version, into=a.no).status_code == 303
    assert _post(alice, f"/console/tickets/{c.no}/merge", version=c.version, into=a.no).status_code == 303
    for dup in (b, c):
        t = app.state.tickets.get(dup.no)
        assert t.status == "已合并" and t.merged_into == a.no
    queue = alice.get("/console/queue").text
    assert a.no in queue and b.no not in queue and c.no not in queue
    merged_list = alice.get("/console/queue", params={"status": "已合并"}).text
    assert b.no in merged_list and c.no in merged_list and a.no not in merged_list
    assert app.state.tickets.counts(department=[DEPT])["待受理"] == 2  # a and d
    page = alice.get(f"/console/tickets/{a.no}").text
    assert "已合并到本留言" in page and b.no in page
    assert "该留言已合并到" in alice.get(f"/console/tickets/{b.no}").text
    from bot.outcomes import ticket_status_text

    assert f"与内容相同的留言 {a.no} 合并办理" in ticket_status_text(
        app.state.tickets.get(c.no)
    )  # 查询 in chat
    # merging into a merged ticket, or a merged ticket again, is refused with a clear message
    r = _post(alice, f"/console/tickets/{d.no}/merge", version=d.version, into=b.no)
    assert r.status_code == 400 and f"请合并到 {a.no}" in r.text
    r = _post(alice, f"/console/tickets/{b.no}/merge", version=app.state.tickets.get(b.no).version, into=d.no)
    assert r.status_code == 400 and "不能合并" in r.text
    # audited in the audit table: each merge, on both tickets
    merges = {(e.target, e.detail["into"]) for e in _audit(app, "merge")}
    assert merges == {(b.no, a.no), (c.no, a.no)}
    assert {e.detail["from"] for e in _audit(app, "merged_in")} == {b.no, c.no}
    # the answer of a reaches u-1 once (a and b are both theirs) and u-2 once
    app.state.tickets.reply(a.no, staff="alice", text="请登录区政务服务网申请房租补贴。")
    rows = [r for r in _deliveries(app) if r.kind in ("ticket_reply", "ticket_merged")]
    assert sorted((r.kind, r.user_id) for r in rows) == [("ticket_merged", "u-2"), ("ticket_reply", "u-1")]
    from bot.pipeline.outbox import _view

    merged_reply = render_delivery(_view(next(r for r in rows if r.kind == "ticket_merged")))
    assert c.no in merged_reply.text and a.no in merged_reply.text and "房租补贴" in merged_reply.text
    # a duplicate merged after the answer gets it at once
    e = _open(app, "小微企业房租补贴在哪里申请？", "u-4")
    app.state.tickets.merge(e.no, into=a.no, by="alice")
    late = [r for r in _deliveries(app) if r.kind == "ticket_merged" and r.user_id == "u-4"]
    assert len(late) == 1 and late[0].data["ticket_no"] == e.no
    # the merged citizen's board page shows the kept ticket's answer
    board = TestClient(app)
    token = re.search(r'name="token" value="([^"]+)"', board.get(f"/board/{c.no}").text)
    assert token
    own = board.post(f"/board/{c.no}", headers=ORIGIN, data={"code": c.verify_code, "token": token.group(1)})
    assert "合并办理" in own.text and "请登录区政务服务网申请房租补贴" in own.text


def test_merge_permission_and_cli(
    app: FastAPI, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = world["a"], world["b"]
    other = app.state.tickets.open(
        question="绿化带杂草多", channel="web", user_ref="u-9", department=OTHER_DEPT
    )
    alice = signed_in(app, "alice")
    r = _post(alice, f"/console/tickets/{b.no}/merge", version=b.version, into=other.no)
    assert r.status_code == 400 and "未找到可合并的留言" in r.text  # alice may not handle the other ticket
    assert app.state.tickets.get(b.no).status == "待受理"
    rita = signed_in(app, "rita")  # a drafting-unit reader: no handling
    assert _post(rita, f"/console/tickets/{b.no}/merge", version=b.version, into=a.no).status_code == 403

    from bot import cli
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", str(app.state.engine.url.render_as_string(hide_password=False)))
    get_settings.cache_clear()
    try:
        assert cli.main(["tickets", "merge", b.no, "--into", other.no, "--as", "alice"]) == 2
        assert "无权办理" in capsys.readouterr().err
        assert cli.main(["tickets", "merge", b.no, "--into", a.no, "--as", "alice"]) == 0
        assert f"已将留言 {b.no} 合并到 {a.no}" in capsys.readouterr().out
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert cli.main(["tickets", "search", PHONE, "--as", "alice", "--json"]) == 0
        out = capsys.readouterr().out
        assert a.no in out and PHONE not in out and "139****5678" in out
    finally:
        get_settings.cache_clear()
    assert app.state.tickets.get(b.no).merged_into == a.no
    (merge,) = _audit(app, "merge")
    assert merge.actor == "alice" and merge.ip == "cli" and merge.target == b.no
    (search,) = _audit(app, "contact_search")
    assert search.actor == "alice" and search.detail["kind"] == "phone" and PHONE not in str(search.target)


# --- search ----------------------------------------------------------------------------------------


def test_search_by_number_phone_name_and_text(app: FastAPI, world: dict[str, Any]) -> None:
    a, d = world["a"], world["d"]
    alice = signed_in(app, "alice")
    by_no = alice.get("/console/queue", params={"q": d.no.lower()}).text
    assert d.no in by_no and a.no not in by_no
    assert _audit(app, "contact_search") == []
    by_phone = alice.get("/console/queue", params={"q": "139 1234 5678"}).text
    assert a.no in by_phone and d.no not in by_phone
    assert PHONE not in by_phone and "139****5678" in by_phone  # masked until the ticket is opened
    assert a.no in alice.get("/console/queue", params={"q": "5678"}).text  # the last digits
    by_name = alice.get("/console/queue", params={"q": "王五"}).text
    assert a.no in by_name and "139****5678" in by_name
    by_text = alice.get("/console/queue", params={"q": "路灯"}).text
    assert d.no in by_text and a.no not in by_text
    kinds = [(e.actor, e.detail["kind"], e.detail["results"]) for e in _audit(app, "contact_search")]
    assert kinds == [("alice", "phone", 1), ("alice", "phone", 1), ("alice", "name", 1)]
    assert all(PHONE not in e.target for e in _audit(app, "contact_search"))
    # a reader and another department find nothing by phone, and nothing is audited for them
    assert a.no not in signed_in(app, "rita").get("/console/queue", params={"q": PHONE}).text
    assert a.no not in signed_in(app, "bob").get("/console/queue", params={"q": PHONE}).text
    assert [e.actor for e in _audit(app, "contact_search")].count("rita") == 0
    # opening the ticket shows the phone (and is the audited contact view)
    assert PHONE in alice.get(f"/console/tickets/{a.no}").text


# --- bulk actions ----------------------------------------------------------------------------------


def test_bulk_assign_transfer_close_checked_per_ticket(app: FastAPI, world: dict[str, Any]) -> None:
    a, b, c, d = world["a"], world["b"], world["c"], world["d"]
    other = app.state.tickets.open(
        question="绿化带杂草多", channel="web", user_ref="u-9", department=OTHER_DEPT
    )
    alice = signed_in(app, "alice")
    queue = alice.get("/console/queue").text
    assert 'id="pick-all"' in queue and f'name="no" value="{a.no}"' in queue
    r = alice.post(
        "/console/queue/bulk",
        headers=ORIGIN,
        data={"csrf": csrf(alice), "action": "assign", "no": [a.no, b.no, other.no]},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "ok=2" in r.headers["location"] and other.no in r.headers["location"]
    assert {app.state.tickets.get(n).assigned_to for n in (a.no, b.no)} == {"alice"}
    assert app.state.tickets.get(other.no).assigned_to is None
    notice = alice.get(r.headers["location"]).text
    assert "成功 2 条" in notice and other.no in notice
    assigned = _audit(app, "assign")
    assert sorted(e.target for e in assigned) == sorted([a.no, b.no]) and all(
        e.detail["bulk"] for e in assigned
    )
    # a supervisor assigns to alice: the history names the supervisor as actor, alice as assignee
    sue = signed_in(app, "sue")
    r = sue.post(
        "/console/queue/bulk",
        headers=ORIGIN,
        data={"csrf": csrf(sue), "action": "assign", "no": [c.no], "assignee": "alice"},
        follow_redirects=False,
    )
    assert "ok=1" in r.headers["location"]
    ev = app.state.tickets.events(c.no)[-1]
    assert ev.actor == "sue" and ev.detail["staff"] == "alice"
    # transfer needs a department and a reason; close of unanswered tickets needs a reason
    r = alice.post(
        "/console/queue/bulk",
        headers=ORIGIN,
        data={
            "csrf": csrf(alice),
            "action": "transfer",
            "no": [d.no],
            "department": OTHER_DEPT,
            "reason": "属绿化",
        },
        follow_redirects=False,
    )
    assert "ok=1" in r.headers["location"] and app.state.tickets.get(d.no).department == OTHER_DEPT
    r = alice.post(
        "/console/queue/bulk",
        headers=ORIGIN,
        data={"csrf": csrf(alice), "action": "close", "no": [a.no, b.no]},
        follow_redirects=False,
    )
    assert "ok=0" in r.headers["location"]  # no reason: refused per ticket
    r = alice.post(
        "/console/queue/bulk",
        headers=ORIGIN,
        data={"csrf": csrf(alice), "action": "close", "no": [a.no, b.no], "reason": "重复留言"},
        follow_redirects=False,
    )
    assert "ok=2" in r.headers["location"]
    assert {app.state.tickets.get(n).status for n in (a.no, b.no)} == {"已办结"}
    assert len(_audit(app, "close")) == 2 and len(_audit(app, "transfer")) == 1
    # no tickets checked: a clear message, not a stack trace
    r = alice.post("/console/queue/bulk", headers=ORIGIN, data={"csrf": csrf(alice), "action": "close"})
    assert r.status_code == 400 and "请先勾选留言" in r.text


# --- canned replies, the board, roles, history -----------------------------------------------------


def test_canned_replies_on_the_ticket_page(app: FastAPI, world: dict[str, Any]) -> None:
    with app.state.sessions.begin() as s:
        s.add(
            ReplyTemplate(
                title="正在核实", body="您的留言已收到，我们正在核实。", department="", updated_by="test"
            )
        )
    page = signed_in(app, "alice").get(f"/console/tickets/{world['a'].no}").text
    assert 'data-canned="canned-list"' in page and 'id="canned-list"' in page
    assert 'data-body="您的留言已收到，我们正在核实。"' in page and "输入 / 可选择常用回复" in page


def test_reopened_ticket_leaves_the_board_until_answered_again(app: FastAPI, world: dict[str, Any]) -> None:
    tickets, a = app.state.tickets, world["a"]
    tickets.reply(a.no, staff="alice", text="可向区发改委申请。")
    tickets.publish(a.no, by="alice")
    board = TestClient(app)
    assert a.no in board.get("/board").text
    tickets.reopen(a.no, by="alice", reason="答复不完整")
    assert a.no not in board.get("/board").text
    assert "可向区发改委申请" not in board.get(f"/board/{a.no}").text
    tickets.reply(a.no, staff="alice", text="可向区发改委申请，材料见附件清单。")
    assert a.no in board.get("/board").text


def test_admin_reads_every_queue_read_only_and_history_names_once(
    app: FastAPI, world: dict[str, Any]
) -> None:
    a = world["a"]
    admin = signed_in(app, "admin")
    landing = admin.get("/console/admin/users").text
    assert (
        "管理员账号不能办理留言" in landing and "办理人员" in landing and 'href="/console/queue"' in landing
    )
    queue = admin.get("/console/queue")
    assert queue.status_code == 200 and a.no in queue.text and "只读" in queue.text
    assert 'href="/console/admin/users"' in queue.text and 'id="bulk"' not in queue.text
    page = admin.get(f"/console/tickets/{a.no}")
    assert page.status_code == 200 and 'action="/console/tickets/' + a.no + '/reply"' not in page.text
    assert PHONE not in page.text  # no contact data for the admin
    assert _post(admin, f"/console/tickets/{a.no}/assign", version=a.version).status_code == 403
    alice = signed_in(app, "alice")
    assert _post(alice, f"/console/tickets/{a.no}/assign", version=a.version).status_code == 303
    html = alice.get(f"/console/tickets/{a.no}").text
    line = re.search(r'<li class="ev assign">(.*?)</li>', html, re.S)
    assert line and line.group(1).count("alice") == 1, line


def test_merged_duplicates_count_once_in_the_public_figures(app: FastAPI, world: dict[str, Any]) -> None:
    from handoff.sla import WorkCalendar
    from handoff.stats import ticket_stats

    day = world["a"].created_at.astimezone(CHINA_TZ).date()

    def received() -> int:
        st = ticket_stats(app.state.sessions, WorkCalendar(app.state.sessions), day, day, today=day)
        return st.total.received

    assert received() == 4
    app.state.tickets.merge(world["b"].no, into=world["a"].no, by="alice")
    assert received() == 3


def test_text_channels_choose_the_category_in_the_message_flow(app: FastAPI) -> None:
    from bot.channels.memory import MemoryChannel

    c = MemoryChannel(app.state.inbox, user_id="tg-1")
    c.ask("我要留言")
    out = c.say("小区门口的公交站太远了，能不能增设一站")
    assert "留言类型：咨询" in out and "求助" in out
    assert "已将留言类型改为“建议”" in c.say("建议")
    no = re.search(r"LY\d{8}-\d{4}", c.say("匿名"))
    assert no and app.state.tickets.get(no.group(0)).category == "建议"
