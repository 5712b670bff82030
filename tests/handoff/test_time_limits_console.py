"""Time limits through the real app (SQLite, frozen ticket clock): the admin's 办理时限 page, a 延期
requested and approved on the ticket page (role checks, audit, the citizen's notice), a 补正 asked on the
ticket page and answered in the widget conversation (chat API) or on the public board, and the CLI's
`tickets extend` / `tickets extension`. Dates as in tests/handoff/test_time_limits.py: from Mon
2026-09-28, working days 09-29, 09-30, (10-01..10-07 National Day), 10-08, 10-09, 10-10 (调休 Saturday),
10-12, 10-13, 10-14, 10-15, 10-16, ..."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import cli
from bot.app import create_app
from bot.models import Delivery
from bot.settings import get_settings
from handoff.models import AuditEntry
from knowledge.models import CHINA_TZ
from tests.bot.conftest import delivered, demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

D = dt.date


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, day: dt.date) -> None:
        self.now = dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=CHINA_TZ)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(demo_url: str, clock: Clock) -> FastAPI:  # noqa: F811
    app = create_app(make_settings(demo_url, sla_days={"咨询": 5, "投诉": 10}))
    app.state.tickets._clock = clock  # the app's own ticket service on a frozen clock
    return app


def _ticket(app: FastAPI, category: str = "投诉", user_ref: str = "citizen-1") -> Any:
    t = app.state.tickets.open(
        question="社保卡补办太慢了", channel="web", user_ref=user_ref, category=category
    )
    make_users(app, t.department)
    return t


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, headers=ORIGIN, data=data, follow_redirects=False)


def _audit(app: FastAPI, action: str) -> list[AuditEntry]:
    with app.state.sessions() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def _deliveries(app: FastAPI, kind: str) -> list[Delivery]:
    with app.state.sessions() as s:
        return list(s.execute(select(Delivery).where(Delivery.kind == kind)).scalars())


def test_admin_edits_the_category_limits(app: FastAPI) -> None:
    t = _ticket(app, "投诉")
    assert t.due_date == D(2026, 10, 16)  # the setting's 10 working days
    admin = signed_in(app, "admin")
    page = admin.get("/console/admin/time-limits")
    assert page.status_code == 200 and "办理时限" in page.text and 'value="10"' in page.text
    token = csrf(admin, "/console/admin/time-limits")
    bad = _post(admin, "/console/admin/time-limits", csrf=token, **{"days_投诉": "十二"})
    assert bad.status_code == 400 and "应为整数" in bad.text
    ok = _post(admin, "/console/admin/time-limits", csrf=token, **{"days_投诉": "12", "days_咨询": "5"})
    assert ok.status_code == 303
    [entry] = _audit(app, "time_limits")
    assert entry.actor == "admin" and entry.detail == {"changed": {"投诉": [10, 12]}}
    # 12 working days from 09-28: ... 10-16 (10), 10-19, 10-20
    assert app.state.tickets.open(
        question="窗口态度差", channel="web", user_ref="c2", category="投诉"
    ).due_date == D(2026, 10, 20)
    assert signed_in(app, "alice").get("/console/admin/time-limits").status_code == 403


def test_extension_on_the_ticket_page(app: FastAPI, clock: Clock) -> None:
    t = _ticket(app, "投诉")  # due 10-16
    alice = signed_in(app, "alice")
    page = alice.get(f"/console/tickets/{t.no}")
    assert "申请延期" in page.text and "10 个工作日" in page.text
    token = csrf(alice, f"/console/tickets/{t.no}")
    r = _post(
        alice,
        f"/console/tickets/{t.no}/extension",
        csrf=token,
        version=t.version,
        new_limit="15",
        reason="需会商",
    )
    assert r.status_code == 303
    page = alice.get(f"/console/tickets/{t.no}").text
    assert "待审批" in page and "须由其他督办人员审批" in page and "批准延期" not in page
    v = app.state.tickets.get(t.no).version
    denied = _post(
        alice, f"/console/tickets/{t.no}/extension/decide", csrf=token, version=v, decision="approve"
    )
    assert denied.status_code == 403  # only supervisors decide
    sue = signed_in(app, "sue")
    assert "批准延期" in sue.get(f"/console/tickets/{t.no}").text
    r = _post(
        sue,
        f"/console/tickets/{t.no}/extension/decide",
        csrf=csrf(sue, f"/console/tickets/{t.no}"),
        version=v,
        decision="approve",
        note="同意",
    )
    assert r.status_code == 303
    done = app.state.tickets.get(t.no)
    assert done.due_date == D(2026, 10, 23)  # 15 working days: 10-19 .. 10-23 after 10-16
    page = sue.get(f"/console/tickets/{t.no}").text
    assert "批准延期" in page and "2026-10-16 → 2026-10-23" in page and "+ 延期 5 个工作日" in page
    assert [a.actor for a in _audit(app, "extension_request")] == ["alice"]
    assert [a.detail["due_date"] for a in _audit(app, "extension_approve")] == [["2026-10-16", "2026-10-23"]]
    [row] = _deliveries(app, "ticket_extended")
    assert row.data["due_date"] == "2026-10-23" and row.user_id == "citizen-1"


def test_supplement_answered_in_the_widget_conversation(app: FastAPI, clock: Clock) -> None:
    with TestClient(app) as client:
        sid = client.post("/api/v1/sessions", json={}).json()["session"]
        r = client.post(
            "/api/v1/tickets",
            json={"session": sid, "question": "灵活就业社保补贴怎么申请", "category": "咨询"},
        )
        assert r.status_code == 200, r.text
        no = r.json()["ticket_no"]
        t = app.state.tickets.get(no)
        assert t.due_date == D(2026, 10, 10)  # 咨询: 5 working days, the 调休 Saturday
        make_users(app, t.department)
        clock.at(D(2026, 9, 29))
        alice = signed_in(app, "alice")
        r = _post(
            alice,
            f"/console/tickets/{no}/supplement",
            csrf=csrf(alice, f"/console/tickets/{no}"),
            version=t.version,
            text="请补充您的参保地",
        )
        assert r.status_code == 303 and app.state.tickets.get(no).status == "待补正"
        assert "补正中，暂停计时" in alice.get(f"/console/tickets/{no}").text
        delivered(app)  # the 补正 request reaches the widget's mailbox
        msgs = client.get("/api/v1/messages", params={"session": sid, "after": 0}).json()["replies"]
        assert [m["text"].count("请补充您的参保地") for m in msgs] == [1]
        clock.at(D(2026, 10, 9))
        r = client.post("/api/v1/chat", json={"session": sid, "text": "参保地是上海青浦"})
        text = r.json()["replies"][0]["text"]
        # paused 09-30, 10-08, 10-09 = 3 working days: 10-10 -> 10-14
        assert no in text and "2026年10月14日" in text, text
        t = app.state.tickets.get(no)
        assert (t.status, t.paused_days, t.due_date) == ("办理中", 3, D(2026, 10, 14))
        [sup] = app.state.tickets.supplements(no)
        assert (sup.via, sup.answer) == ("chat", "参保地是上海青浦")
        assert "留言人在对话中补充：参保地是上海青浦" in alice.get(f"/console/tickets/{no}").text
        assert _deliveries(app, "ticket_resumed") == []  # the conversation's own reply told them
        assert [(a.actor, a.target) for a in _audit(app, "supplement_chat")] == [("citizen", no)]
        # the next message is a question again, not a supplement
        again = client.post("/api/v1/chat", json={"session": sid, "text": "依申请公开多长时间答复"}).json()
        assert "已收到您对留言" not in again["replies"][0]["text"]
        assert len(app.state.tickets.supplements(no)) == 1


def test_supplement_answered_on_the_board(app: FastAPI, clock: Clock) -> None:
    t = _ticket(app, "咨询")  # due 10-10
    app.state.tickets.request_supplement(t.no, by="alice", text="请补充办理网点")  # Mon 09-28
    clock.at(D(2026, 9, 30))
    client = TestClient(app)
    page = client.get(f"/board/{t.no}")
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    mine = client.post(f"/board/{t.no}", data={"code": t.verify_code, "token": token}, headers=ORIGIN)
    assert "请补充办理网点" in mine.text and "待补正" in mine.text
    wrong = client.post(
        f"/board/{t.no}/supplement", data={"code": "000000", "text": "x", "token": token}, headers=ORIGIN
    )
    assert wrong.status_code == 404 and app.state.tickets.get(t.no).status == "待补正"
    r = client.post(
        f"/board/{t.no}/supplement",
        data={"code": t.verify_code, "text": "青浦区社保中心", "token": token},
        headers=ORIGIN,
    )
    # paused 09-29, 09-30 = 2: 10-10 -> 10-12, 10-13
    assert r.status_code == 200 and "2026-10-13" in r.text
    assert app.state.tickets.get(t.no).due_date == D(2026, 10, 13)
    assert [d.data["via"] for d in _deliveries(app, "ticket_resumed")] == ["board"]
    assert [a.target for a in _audit(app, "board_supplement")] == [t.no]


def test_cli_extend_and_decide(
    demo_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("POLICYBOT_SLA_DAYS", '{"投诉": 10}')
    get_settings.cache_clear()
    app = create_app(get_settings())
    t = _ticket(app, "投诉")
    try:
        assert (
            cli.main(["tickets", "extend", t.no, "--days", "3", "--reason", "需现场核实", "--as", "alice"])
            == 0
        )
        assert "待督办审批" in capsys.readouterr().out
        assert cli.main(["tickets", "extension", t.no, "approve", "--as", "alice"]) == 2
        assert "不是督办" in capsys.readouterr().err
        assert cli.main(["tickets", "extension", t.no, "approve", "--note", "同意", "--as", "sue"]) == 0
        out = capsys.readouterr().out
        # created now (real clock): due + 3 working days, whatever today is
        done = app.state.tickets.get(t.no)
        assert done.extension_days == 3 and str(done.due_date) in out
        assert app.state.tickets.extensions(t.no)[0].decided_by == "sue"
        assert [a.detail["via"] for a in _audit(app, "extension_approve")] == ["cli"]
    finally:
        get_settings.cache_clear()


def test_supplement_answered_on_a_text_channel_and_only_by_its_own_user(app: FastAPI, clock: Clock) -> None:
    from bot.channels.memory import MemoryChannel

    c = MemoryChannel(app.state.inbox, user_id="openid-1")  # WeChat and Telegram take this same path
    app.state.outbox.channels[c.name] = c
    c.ask("转人工")
    c.say("灵活就业人员的社保补贴怎么申请")
    no = re.search(r"LY\d{8}-\d{4}", c.say("匿名")).group(0)  # type: ignore[union-attr]
    assert app.state.tickets.get(no).due_date == D(2026, 10, 10)  # 咨询, the setting's 5 working days
    app.state.tickets.request_supplement(no, by="alice", text="请补充您的就业登记情况")  # Mon 09-28
    delivered(app)
    assert [r.text.count("请补充您的就业登记情况") for _, r in c.pushed] == [1]
    other = MemoryChannel(app.state.inbox, user_id="openid-2")
    assert "已收到您对留言" not in other.say("灵活就业人员的社保补贴怎么申请")
    assert app.state.tickets.get(no).status == "待补正"
    clock.at(D(2026, 10, 8))
    # paused 09-29, 09-30, 10-08 = 3: 10-10 -> 10-12, 10-13, 10-14
    assert "2026年10月14日" in c.say("已在街道办理就业登记")
    assert app.state.tickets.supplements(no)[0].answer == "已在街道办理就业登记"
