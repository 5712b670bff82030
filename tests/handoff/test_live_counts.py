"""The console's live count (/console/api/counts, polled by live.js): signed-in queue roles only,
the user's own queue scope, counts that follow new tickets; the navigation carries the badge and the
script, the queue page its refresh bar and the "开启桌面提醒" button. Staff notification addresses:
set in the admin user page and by `policybot users add/edit --email`, refused when malformed."""

from __future__ import annotations

import io
import re

import pytest
from fastapi import FastAPI

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, OTHER_DEPT, accounts, csrf, make_users, signed_in

DEPT = "青浦区医疗保障局"


@pytest.fixture
def app(demo_url: str) -> FastAPI:  # noqa: F811
    application = create_app(make_settings(demo_url, console_live_poll_seconds=3))
    make_users(application, DEPT)
    return application


def _open(app: FastAPI, department: str) -> str:
    t = app.state.tickets.open(
        question="生育津贴怎么申领", channel="web", user_ref="c", department=department
    )
    return str(t.no)


def test_counts_follow_new_tickets_in_the_users_scope(app: FastAPI) -> None:
    anon = signed_in(app, "alice")
    anon.cookies.clear()
    r = anon.get("/console/api/counts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")  # no bypass
    alice, bob, sue, admin = (signed_in(app, u) for u in ("alice", "bob", "sue", "admin"))
    before = alice.get("/console/api/counts").json()
    assert before["new"] == before["counts"]["待受理"]
    assert before["counts"]["all"] == sum(
        before["counts"][s] for s in ("待受理", "办理中", "待补正", "已答复", "已办结")
    )
    _open(app, DEPT)
    _open(app, DEPT)
    _open(app, OTHER_DEPT)
    r = alice.get("/console/api/counts")
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["new"] == before["new"] + 2  # her department only
    assert bob.get("/console/api/counts").json()["new"] == 1
    assert sue.get("/console/api/counts").json()["new"] == before["new"] + 3  # supervisors see all
    assert admin.get("/console/api/counts").json()["new"] == before["new"] + 3  # admins read every queue


def test_pages_carry_the_badge_the_bar_and_the_button(app: FastAPI) -> None:
    alice = signed_in(app, "alice")
    page = alice.get("/console/queue").text
    assert 'src="/console/static/live.js"' in page and "data-live-count" in page
    assert 'data-poll="3000"' in page  # POLICYBOT_CONSOLE_LIVE_POLL_SECONDS
    assert 'id="live-new"' in page and "有 {n} 条新留言，点击刷新" in page
    assert re.search(r'<button type="button" id="live-notify"[^>]*>开启桌面提醒</button>', page)
    assert 'data-live-status="待受理"' in page
    assert "data-live-count" in alice.get("/console/faqs").text  # every page's navigation
    assert "data-live-count" not in signed_in(app, "admin").get("/console/admin/users").text
    js = alice.get("/console/static/live.js")
    assert js.status_code == 200 and "/console/api/counts" in js.text and "requestPermission" in js.text


def test_staff_email_in_the_admin_page(app: FastAPI) -> None:
    admin = signed_in(app, "admin")
    token = csrf(admin)
    users = {u.username: u for u in accounts(app).users()}
    alice = users["alice"]
    form = {"csrf": token, "display_name": "张丽", "role": "staff", "departments": DEPT, "active": "1"}
    r = admin.post(
        f"/console/admin/users/{alice.id}", headers=ORIGIN, data={**form, "email": "zhangli@example.gov.cn"}
    )
    assert r.status_code == 200 and "用户已保存" in r.text and 'value="zhangli@example.gov.cn"' in r.text
    assert accounts(app).get_user(alice.id).email == "zhangli@example.gov.cn"
    r = admin.post(
        f"/console/admin/users/{alice.id}", headers=ORIGIN, data={**form, "email": "not an address"}
    )
    assert r.status_code == 400 and "电子邮箱格式不正确" in r.text
    assert accounts(app).get_user(alice.id).email == "zhangli@example.gov.cn"
    r = admin.post(
        "/console/admin/users",
        headers=ORIGIN,
        data={
            "csrf": token,
            "username": "wang",
            "role": "staff",
            "departments": DEPT,
            "password": "Wang-pass-2026!",
            "email": "wang@example.gov.cn",
        },
    )
    assert r.status_code == 200 and "用户已保存" in r.text
    assert next(u for u in accounts(app).users() if u.username == "wang").email == "wang@example.gov.cn"


def test_users_cli_email(
    demo_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot import cli
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", demo_url)
    get_settings.cache_clear()
    try:
        monkeypatch.setattr("sys.stdin", io.StringIO("Amy-pass-2026x\n"))
        args = ["users", "add", "amy", "--role", "staff", "--department", DEPT, "--password-stdin"]
        assert cli.main([*args, "--email", "amy@example.gov.cn"]) == 0
        assert cli.main(["users", "edit", "amy", "--email", "bad@"]) == 2
        assert "电子邮箱格式不正确" in capsys.readouterr().err
        assert cli.main(["users", "edit", "amy", "--email", "amy.li@example.gov.cn"]) == 0
        assert "amy.li@example.gov.cn" in capsys.readouterr().out
        assert cli.main(["users", "list", "--json"]) == 0
        assert '"email": "amy.li@example.gov.cn"' in capsys.readouterr().out
        assert cli.main(["users", "edit", "amy", "--email", ""]) == 0
        assert cli.main(["users", "edit", "nobody", "--email", "x@example.gov.cn"]) == 2
    finally:
        get_settings.cache_clear()
