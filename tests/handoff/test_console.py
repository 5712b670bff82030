"""Staff console and public board through the HTTP API (TestClient on the real app over SQLite):
login, lockout, CSRF and Origin checks, session expiry, cookie flags and security headers, optimistic
locking of replies, escaping, contact-data audit, transfer, promotion to an FAQ that the bot then
answers, the public board with masked data, code lookup with throttling and rating, the audit log
CSV, password policy and the `policybot users` CLI."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bot.app import create_app
from bot.models import Delivery
from handoff.console.auth import check_password_policy
from handoff.models import StaffSession
from knowledge.errors import InvalidInput
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, PASSWORDS, accounts, csrf, login, make_users, signed_in

QUESTION = "碳达峰试点企业有哪些扶持政策？"


@pytest.fixture
def app(demo_url: str) -> FastAPI:  # noqa: F811
    return create_app(make_settings(demo_url))


@pytest.fixture
def ticket(app: FastAPI) -> Any:
    t = app.state.tickets.open(
        question=QUESTION + "<script>alert(1)</script>",
        channel="web",
        user_ref="citizen-1",
        transcript=[{"role": "user", "text": "碳达峰企业扶持"}, {"role": "bot", "text": "没有找到"}],
        contact_name="王五",
        contact_phone="13912345678",
        consent=True,
    )
    make_users(app, t.department)
    return t


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, headers=ORIGIN, data=data, follow_redirects=False)


# --- login, lockout, sessions ------------------------------------------------------------------------


def test_login_lockout_and_audit(app: FastAPI, ticket: Any) -> None:
    c = TestClient(app)
    for _ in range(4):
        r = login(c, "alice", "wrong-Password-1")
        assert r.status_code == 400 and "用户名或密码错误" in r.text
    r = login(c, "alice", "wrong-Password-1")
    assert r.status_code == 429 and "15分钟" in r.text
    assert login(c, "alice").status_code == 429  # locked even with the right password
    assert login(c, "nobody", "x").status_code == 400  # unknown user: same message
    assert login(c, "bob").status_code == 303  # another user from the same IP is not locked (limit 20)
    admin = signed_in(app, "admin")
    audit = admin.get("/console/audit?actor=alice").text
    assert "登录失败" in audit and "登录锁定" in audit
    # an admin password reset lifts the lock
    accounts(app).set_password("alice", "Alice-new-pass-1")
    assert login(TestClient(app), "alice", "Alice-new-pass-1").status_code == 303


def test_csrf_origin_and_uploads(app: FastAPI, ticket: Any) -> None:
    c = signed_in(app, "alice")
    token = csrf(c)
    url = f"/console/tickets/{ticket.no}/note"
    assert (
        c.post(url, data={"csrf": token, "text": "x"}, follow_redirects=False).status_code == 403
    )  # no Origin
    assert (
        c.post(
            url,
            data={"csrf": token, "text": "x"},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        ).status_code
        == 403
    )
    assert (
        c.post(url, data={"csrf": "forged", "text": "x"}, headers=ORIGIN, follow_redirects=False).status_code
        == 403
    )
    assert (
        c.post(
            url,
            data={"csrf": token, "text": "x"},
            headers={"Referer": "http://testserver/console/queue"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    upload = c.post(
        url,
        data={"csrf": token, "text": "x"},
        files={"file": ("a.txt", io.BytesIO(b"hi"))},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert upload.status_code == 400 and "不接受上传文件" in upload.text
    # the login form has its own token
    r = TestClient(app).post(
        "/console/login", headers=ORIGIN, data={"username": "alice", "password": PASSWORDS["alice"]}
    )
    assert r.status_code == 403


def test_session_expiry_cookie_flags_and_headers(app: FastAPI, ticket: Any) -> None:
    c = TestClient(app)
    r = login(c, "alice")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pb_console=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = c.get("/console/queue")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text.replace('<script src="/console/static/console.js" defer></script>', "")
    # idle expiry
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=31)
    with app.state.sessions.begin() as s:
        s.execute(update(StaffSession).values(last_seen_at=old))
    r = c.get("/console/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=/console/queue")
    # absolute expiry, even when active
    login(c, "alice")
    with app.state.sessions.begin() as s:
        s.execute(update(StaffSession).values(created_at=old - dt.timedelta(hours=10)))
    assert c.get("/console/queue", follow_redirects=False).status_code == 303
    # logout ends the session server-side (a replayed cookie is refused)
    login(c, "alice")
    value = c.cookies.get("pb_console")
    assert _post(c, "/console/logout", csrf=csrf(c)).status_code == 303
    replay = TestClient(app, cookies={"pb_console": value})
    assert replay.get("/console/queue", follow_redirects=False).status_code == 303


def test_secure_cookie_setting(demo_url: str) -> None:  # noqa: F811
    app = create_app(make_settings(demo_url, console_cookie_secure=True))
    make_users(app, "政务公开办公室")
    c = TestClient(app, base_url="https://testserver")
    page = c.get("/console/login")
    assert page.headers["set-cookie"].startswith("__Host-pb_csrf=") and "Secure" in page.headers["set-cookie"]
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    r = c.post(
        "/console/login",
        headers={"Origin": "https://testserver"},
        follow_redirects=False,
        data={"username": "alice", "password": PASSWORDS["alice"], "token": token.group(1)},
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-pb_console=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_password_policy() -> None:
    for bad in ("Short1!", "alllowercaseletters", "NoDigitsOrSymbols", "alice.wang1A"):
        with pytest.raises(InvalidInput):
            check_password_policy(bad, "alice.wang1a" if bad == "alice.wang1A" else "alice")
    check_password_policy("Correct-horse-7", "alice")
    check_password_policy("政务公开abc73854", "alice")  # CJK counts as a symbol class


# --- queue and ticket page ----------------------------------------------------------------------------


def test_queue_counts_filters_and_escaping(app: FastAPI, ticket: Any) -> None:
    tickets = app.state.tickets
    other = tickets.open(
        question="另一条留言", channel="web", user_ref="citizen-2", department=ticket.department
    )
    c = signed_in(app, "alice")
    page = c.get("/console/queue")
    assert ticket.no in page.text and other.no in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert re.search(r"<b>2</b><span class=\"badge pending\">待受理</span>", page.text)
    assert other.no not in c.get("/console/queue", params={"q": "碳达峰"}).text
    assert ticket.no not in c.get("/console/queue", params={"status": "已答复"}).text
    assert c.get("/console/queue", params={"status": "bogus"}).status_code == 400
    # a ticket past its due date is red in the queue
    with app.state.sessions.begin() as s:
        from handoff.models import Ticket

        s.execute(update(Ticket).where(Ticket.no == other.no).values(due_date=dt.date(2020, 1, 2)))
    page = c.get("/console/queue")
    assert re.search(
        r'<tr class="overdue">\s*(?:<td class="pick">[^\n]*</td>\s*)?<td class="mono"><a href="/console/tickets/'
        + other.no,
        page.text,
    )
    assert c.get("/console/queue?overdue=1").text.count("/console/tickets/") == 1


def test_ticket_page_contact_audit_and_optimistic_locking(app: FastAPI, ticket: Any) -> None:
    alice = signed_in(app, "alice")
    page = alice.get(f"/console/tickets/{ticket.no}")
    assert "13912345678" in page.text and "王五" in page.text
    assert "&lt;script&gt;" in page.text and "碳达峰企业扶持" in page.text  # transcript
    sue = signed_in(app, "sue")
    sup_page = sue.get(f"/console/tickets/{ticket.no}").text
    assert "13912345678" not in sup_page and "仅对承办部门办理人员可见" in sup_page
    rita = signed_in(app, "rita")
    read_only = rita.get(f"/console/tickets/{ticket.no}").text
    assert "13912345678" not in read_only and "发送答复" not in read_only

    token = csrf(alice)
    version = ticket.version
    r = _post(alice, f"/console/tickets/{ticket.no}/assign", csrf=token, version=version)
    assert r.status_code == 303
    # sue opened the page before alice took it: her stale reply is refused, her text kept
    r = _post(
        sue,
        f"/console/tickets/{ticket.no}/reply",
        csrf=csrf(sue),
        version=version,
        text="督办答复<b>草稿</b>",
    )
    assert r.status_code == 409 and "已被他人更新" in r.text and "督办答复&lt;b&gt;草稿&lt;/b&gt;" in r.text
    current = app.state.tickets.get(ticket.no)
    r = _post(
        alice,
        f"/console/tickets/{ticket.no}/reply",
        csrf=token,
        version=current.version,
        text="您好，相关扶持政策请见区发改委通知。",
    )
    assert r.status_code == 303
    shown = alice.get(r.headers["location"]).text
    assert "答复已保存，正通过原渠道推送给留言人" in shown
    app.state.outbox.drain()  # what the drain thread does (this test app has no lifespan)
    assert "已推送（web" in alice.get(r.headers["location"]).text
    assert app.state.tickets.get(ticket.no).status == "已答复"

    admin = signed_in(app, "admin")
    audit = admin.get("/console/audit", params={"target": ticket.no}).text
    assert audit.count("查看联系方式") >= 1 and "答复留言" in audit and "受理留言" in audit
    assert "sue" not in re.findall(
        r"<td>(\w+)</td><td>[^<]*</td><td class=\"mono\">[^<]*</td><td>查看联系方式", audit
    )


def test_transfer_moves_the_ticket_out_of_the_queue(app: FastAPI, ticket: Any) -> None:
    accounts(app).add_department("区绿化市容局")  # transfers go only to known departments
    alice = signed_in(app, "alice")
    r = _post(
        alice,
        f"/console/tickets/{ticket.no}/transfer",
        csrf=csrf(alice),
        version=ticket.version,
        department="区绿化市容局",
        reason="属绿化市容局职责",
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/queue?done=transfer"
    assert alice.get(f"/console/tickets/{ticket.no}").status_code == 404
    bob = signed_in(app, "bob")
    page = bob.get(f"/console/tickets/{ticket.no}").text
    assert "属绿化市容局职责" in page and "转办" in page
    assert "13912345678" in page  # bob is now staff of the department


def test_faq_search_endpoint(app: FastAPI, ticket: Any) -> None:
    alice = signed_in(app, "alice")
    items = alice.get("/console/faq-search", params={"q": "依申请公开多长时间答复"}).json()["items"]
    assert items and "工作日" in items[0]["answer"]
    assert alice.get("/console/faq-search", params={"q": ""}).json() == {"items": []}


# --- promote to FAQ, board, rating -------------------------------------------------------------------------


def test_promote_publish_board_and_rating(app: FastAPI, ticket: Any) -> None:
    tickets = app.state.tickets
    kb = app.state.kb
    assert kb.ask(QUESTION).decision != "answer"
    alice = signed_in(app, "alice")
    token = csrf(alice)
    t = tickets.assign(ticket.no, staff="alice")
    reply_text = "碳达峰试点企业可申请区节能减排专项资金，详见区发改委通知。"
    _post(alice, f"/console/tickets/{t.no}/reply", csrf=token, version=t.version, text=reply_text)
    t = tickets.get(t.no)
    r = _post(
        alice,
        f"/console/tickets/{t.no}/publish",
        csrf=token,
        version=t.version,
        question=QUESTION + " 我的电话13912345678",
        answer=reply_text,
    )
    assert r.status_code == 303

    public = TestClient(app)
    board = public.get("/board").text
    assert t.no in board and "139****5678" in board and "13912345678" not in board and "王" not in board
    assert "&lt;script&gt;" not in board or "<script>alert" not in board
    assert board.count("139****5678") == 1  # the masked text only: the contact fields are never shown

    # promote: one action drafts an FAQ with the ticket's own question (its phone left out, not
    # starred), no other message of the conversation, the unit and the ticket number
    r = _post(alice, f"/console/tickets/{t.no}/promote", csrf=token)
    assert r.status_code == 303
    faq_id = r.headers["location"].split("/")[-1].split("?")[0]
    draft = kb.faqs.require(faq_id)
    assert draft.status == "draft" and draft.answer == reply_text and draft.unit == t.department
    assert draft.question == QUESTION and "*" not in draft.question and draft.similar == ()
    assert f"留言{t.no}" in draft.tags
    assert (
        _post(alice, f"/console/tickets/{t.no}/promote", csrf=token).headers["location"]
        == f"/console/faqs/{faq_id}"
    )
    form = alice.get(f"/console/faqs/{faq_id}").text
    seq = re.search(r'name="seq" value="(\d+)"', form)
    assert seq
    r = _post(
        alice,
        f"/console/faqs/{faq_id}/publish",
        csrf=token,
        seq=seq.group(1),
        question=QUESTION,
        similar="碳达峰企业扶持\n碳达峰试点扶持政策",
        answer=reply_text,
        tags="政策留言转化，留言" + t.no,
        unit=t.department,
        source_policy="",
        source_article="",
    )
    assert r.status_code == 303, r.text
    assert kb.faqs.require(faq_id).status == "published"
    with app.state.sessions() as s:  # "your question now has an answer", for the ticket's citizen
        notices = s.scalars(select(Delivery).where(Delivery.kind == "answer_published")).all()
        assert [(d.channel, d.user_id, d.data["id"]) for d in notices] == [("web", "citizen-1", faq_id)]
    asked = kb.ask(QUESTION)
    assert asked.decision == "answer" and asked.faq_id == faq_id  # the matcher knows it at once

    # citizen: wrong code, right code, rating once
    page = public.get(f"/board/{t.no}").text
    token_b = re.search(r'name="token" value="([^"]+)"', page)
    assert token_b
    wrong = public.post(
        f"/board/{t.no}",
        headers=ORIGIN,
        data={"code": "000000" if t.verify_code != "000000" else "111111", "token": token_b.group(1)},
    )
    assert wrong.status_code == 404 and "查询码" in wrong.text
    mine = public.post(
        f"/board/{t.no}", headers=ORIGIN, data={"code": t.verify_code, "token": token_b.group(1)}
    )
    assert mine.status_code == 200 and reply_text in mine.text and "满意" in mine.text
    r = public.post(
        f"/board/{t.no}/rate",
        headers=ORIGIN,
        data={"code": t.verify_code, "token": token_b.group(1), "rating": "不满意"},
    )
    assert r.status_code == 200 and "重新办理" in r.text
    again = public.post(
        f"/board/{t.no}/rate",
        headers=ORIGIN,
        data={"code": t.verify_code, "token": token_b.group(1), "rating": "满意"},
    )
    assert again.status_code == 400 and "已评价" in again.text
    rated = tickets.get(t.no)
    assert rated.rating == "不满意" and rated.flagged and rated.status == "办理中"
    sue = signed_in(app, "sue")
    flagged = sue.get("/console/", follow_redirects=True)
    assert t.no in flagged.text and "不满意" in flagged.text
    assert sue.get("/console/reports").status_code == 200


def test_board_code_throttle(app: FastAPI, ticket: Any) -> None:
    public = TestClient(app)
    token = re.search(r'name="token" value="([^"]+)"', public.get(f"/board/{ticket.no}").text)
    assert token
    wrong = "000000" if ticket.verify_code != "000000" else "111111"
    codes = [
        public.post(
            f"/board/{ticket.no}", headers=ORIGIN, data={"code": wrong, "token": token.group(1)}
        ).status_code
        for _ in range(10)
    ]
    assert codes[:9] == [404] * 9 and codes[9] == 429
    right = public.post(
        f"/board/{ticket.no}", headers=ORIGIN, data={"code": ticket.verify_code, "token": token.group(1)}
    )
    assert right.status_code == 429  # locked for this number, even with the right code
    assert (
        public.post(
            f"/board/{ticket.no}", data={"code": ticket.verify_code, "token": token.group(1)}
        ).status_code
        == 403
    )


# --- admin pages, audit CSV ---------------------------------------------------------------------------------


def test_admin_creates_users_and_exports_formula_safe_csv(app: FastAPI, ticket: Any) -> None:
    admin = signed_in(app, "admin")
    token = csrf(admin)
    weak = _post(
        admin,
        "/console/admin/users",
        csrf=token,
        username="carol",
        role="staff",
        departments=ticket.department,
        password="carol12345",
    )
    assert weak.status_code == 400 and "至少三类" in weak.text
    r = _post(
        admin,
        "/console/admin/users",
        csrf=token,
        username="carol",
        display_name="<i>卡罗</i>",
        role="staff",
        departments=ticket.department,
        password="Carol-pass-2026",
    )
    assert r.status_code == 303
    users = admin.get("/console/admin/users").text
    assert "&lt;i&gt;卡罗&lt;/i&gt;" in users
    assert login(TestClient(app), "carol", "Carol-pass-2026").status_code == 303
    login(TestClient(app), "=cmd|' /C calc'!A0", "x")  # a hostile name in the audit log
    csv_text = admin.get("/console/audit.csv").text
    assert "'=cmd|" in csv_text and "\n=cmd" not in csv_text and ",=cmd" not in csv_text
    assert "新增用户" in csv_text
    # the last admin cannot be disabled
    admin_id = next(u.id for u in accounts(app).users() if u.username == "admin")
    r = _post(
        admin, f"/console/admin/users/{admin_id}", csrf=token, role="admin", display_name="", departments=""
    )
    assert r.status_code == 400 and "最后一个系统管理员" in r.text


# --- CLI --------------------------------------------------------------------------------------------------------


def test_users_cli(
    demo_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot import cli
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", demo_url)
    get_settings.cache_clear()
    try:
        monkeypatch.setattr("sys.stdin", io.StringIO("Root-pass-2026\n"))
        assert cli.main(["users", "add", "root", "--role", "admin", "--password-stdin"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
        assert (
            cli.main(["users", "add", "amy", "--role", "staff", "--department", "某局", "--password-stdin"])
            == 2
        )
        assert "密码至少10位" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO("Amy-pass-2026x\n"))
        assert (
            cli.main(["users", "add", "amy", "--role", "staff", "--password-stdin"]) == 2
        )  # needs a department
        monkeypatch.setattr("sys.stdin", io.StringIO("Amy-pass-2026x\n"))
        assert (
            cli.main(["users", "add", "amy", "--role", "staff", "--department", "某局", "--password-stdin"])
            == 0
        )
        monkeypatch.setattr("sys.stdin", io.StringIO("Amy-newpass-2026\n"))
        assert cli.main(["users", "passwd", "amy", "--password-stdin"]) == 0
        assert cli.main(["users", "disable", "amy"]) == 0
        capsys.readouterr()
        assert cli.main(["users", "list"]) == 0
        out = capsys.readouterr().out
        assert "root" in out and "amy" in out and "[已停用]" in out
        monkeypatch.setattr(
            "getpass.getpass",
            lambda prompt="": "Same-pass-2026" if "再次" not in prompt else "Other-pass-2026",
        )
        assert cli.main(["users", "add", "bea", "--role", "supervisor"]) == 2  # the two entries differ
    finally:
        get_settings.cache_clear()


def test_faq_form_edits_the_service_link(app: FastAPI, ticket: Any) -> None:
    tickets = app.state.tickets
    alice = signed_in(app, "alice")
    token = csrf(alice)
    t = tickets.assign(ticket.no, staff="alice")
    _post(alice, f"/console/tickets/{t.no}/reply", csrf=token, version=t.version, text="可在一网通办申请。")
    r = _post(alice, f"/console/tickets/{t.no}/promote", csrf=token)
    faq_id = r.headers["location"].split("/")[-1].split("?")[0]
    form = alice.get(f"/console/faqs/{faq_id}").text
    assert 'name="service_url"' in form and "办事链接" in form
    seq = re.search(r'name="seq" value="(\d+)"', form)
    assert seq
    fields = dict(
        question=QUESTION, similar="", answer="可在一网通办申请。", tags="政策留言转化", unit=t.department
    )
    url = "https://zwdt.example.gov.cn/item/123"
    r = _post(alice, f"/console/faqs/{faq_id}", csrf=token, seq=seq.group(1), service_url=url, **fields)
    assert r.status_code == 303, r.text
    assert app.state.kb.faqs.require(faq_id).service_url == url
    assert f'value="{url}"' in alice.get(f"/console/faqs/{faq_id}").text
    seq = re.search(r'name="seq" value="(\d+)"', alice.get(f"/console/faqs/{faq_id}").text)
    assert seq
    bad = _post(
        alice, f"/console/faqs/{faq_id}", csrf=token, seq=seq.group(1), service_url="ftp://x", **fields
    )
    assert bad.status_code in (200, 400, 422) and "Traceback" not in bad.text
    assert app.state.kb.faqs.require(faq_id).service_url == url
    cleared = _post(alice, f"/console/faqs/{faq_id}", csrf=token, seq=seq.group(1), service_url="", **fields)
    assert cleared.status_code == 303
    assert app.state.kb.faqs.require(faq_id).service_url is None
