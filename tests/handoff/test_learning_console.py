"""The console side of the knowledge loop, on SQLite and PostgreSQL: saving and publishing an FAQ is
refused when existing phrasings of other FAQs would be answered differently (the list is shown, the
form kept), an admin's confirmation is audited; answering a ticket with an inserted FAQ answer
queues the ticket's wording; /console/suggestions approves and rejects per drafting unit."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from handoff.console.audit import AuditLog
from knowledge.demo import load_demo
from knowledge.suggestions import SuggestionStore
from tests.bot.conftest import make_settings
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

SESSION = "依申请公开多长时间答复\n知识库\n今天天气怎么样"


@pytest.fixture
def app(db_url: str) -> FastAPI:
    app = create_app(make_settings(db_url))
    load_demo(app.state.kb.faqs, app.state.kb.policies)
    app.state.kb.refresh(force=True)
    make_users(app, app.state.kb.faqs.require("demo-003").unit)
    return app


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, headers=ORIGIN, data=data, follow_redirects=False)


def _form(client: TestClient, faq_id: str) -> dict[str, str]:
    page = client.get(f"/console/faqs/{faq_id}").text
    seq = re.search(r'name="seq" value="(\d+)"', page)
    assert seq
    return {"seq": seq.group(1), "csrf": csrf(client, f"/console/faqs/{faq_id}")}


def test_publishing_a_corrupting_draft_is_refused_then_confirmed_by_an_admin(app: FastAPI) -> None:
    kb = app.state.kb
    unit = kb.faqs.require("demo-003").unit
    draft = kb.faqs.add(
        by="alice", question="公园健身器材损坏报修", answer="请拨打园林热线。", status="draft", unit=unit
    )
    alice = signed_in(app, "alice")
    fields = dict(
        question=draft.question, similar=SESSION, answer=draft.answer, tags="", unit=unit,
        source_policy="", source_article="",
    )  # fmt: skip
    r = _post(alice, f"/console/faqs/{draft.id}/publish", **_form(alice, draft.id), **fields)
    assert r.status_code == 409
    assert "未发布" in r.text and "demo-001" in r.text and "依申请公开多久答复" in r.text
    assert "今天天气怎么样" in r.text  # the form is kept
    assert "我已了解以上冲突" not in r.text  # staff cannot override
    assert kb.faqs.require(draft.id).status == "draft"
    assert kb.ask("依申请公开多长时间答复").faq_id == "demo-001"
    # the admin sees the override, and using it is audited
    admin = signed_in(app, "admin")
    r = _post(admin, f"/console/faqs/{draft.id}/publish", **_form(admin, draft.id), **fields)
    assert r.status_code == 409 and "我已了解以上冲突" in r.text
    r = _post(
        admin, f"/console/faqs/{draft.id}/publish", **_form(admin, draft.id), **fields, confirm_conflicts="1"
    )
    assert r.status_code == 303
    assert kb.faqs.require(draft.id).status == "published"
    [entry] = AuditLog(app.state.sessions).list(action="faq_conflicts_confirmed")
    assert entry.actor == "admin" and entry.target == draft.id and "demo-001" in entry.detail["note"]


def test_saving_a_published_faq_is_checked_too(app: FastAPI) -> None:
    alice = signed_in(app, "alice")
    rec = app.state.kb.faqs.require("demo-003")
    fields = dict(
        question=rec.question, similar="\n".join([*rec.similar, "依申请公开多长时间答复"]), answer=rec.answer,
        tags="，".join(rec.tags), unit=rec.unit or "", source_policy=rec.source_policy or "",
        source_article=rec.source_article or "",
    )  # fmt: skip
    r = _post(alice, "/console/faqs/demo-003", **_form(alice, "demo-003"), **fields)
    assert r.status_code == 409 and "demo-001" in r.text
    assert app.state.kb.faqs.require("demo-003").seq == rec.seq


def test_reply_with_inserted_faq_answer_queues_the_wording_then_approve(app: FastAPI) -> None:
    kb, tickets = app.state.kb, app.state.tickets
    unit = kb.faqs.require("demo-003").unit
    t = tickets.open(
        question="应届生找工作有没有帮扶", channel="web", user_ref="c1", department=unit, transcript=[]
    )
    t = tickets.assign(t.no, staff="alice")
    alice = signed_in(app, "alice")
    token = csrf(alice, f"/console/tickets/{t.no}")
    found = alice.get("/console/faq-search", params={"q": "毕业生就业帮扶"}).json()["items"]
    item = next(i for i in found if i["id"] == "demo-003")
    text = "您好！\n" + item["answer"]
    r = _post(
        alice, f"/console/tickets/{t.no}/reply", csrf=token, version=t.version, text=text, faq_id="demo-003"
    )
    assert r.status_code == 303
    [s] = SuggestionStore(kb).list()
    assert (s.faq_id, s.text, s.sources) == ("demo-003", "应届生找工作有没有帮扶", {"ticket": 1})

    page = alice.get("/console/suggestions")
    assert page.status_code == 200 and "应届生找工作有没有帮扶" in page.text and "留言以问答答复" in page.text
    # the drafting unit's reader sees it and may reject, not approve; another unit's staff sees nothing
    assert "应届生找工作有没有帮扶" in signed_in(app, "rita").get("/console/suggestions").text
    assert "应届生找工作有没有帮扶" not in signed_in(app, "bob").get("/console/suggestions").text
    rita = signed_in(app, "rita")
    r = _post(
        rita, "/console/suggestions", csrf=csrf(rita, "/console/suggestions"), action="approve", ids=[s.id]
    )
    assert r.status_code == 303 and SuggestionStore(kb).list()[0].status == "pending"
    r = _post(
        alice, "/console/suggestions", csrf=csrf(alice, "/console/suggestions"), action="approve", ids=[s.id]
    )
    assert r.status_code == 303 and "done=suggestions_approved" in r.headers["location"]
    assert "应届生找工作有没有帮扶" in kb.faqs.require("demo-003").similar
    assert kb.faqs.history("demo-003")[-1].by == "alice"
    assert AuditLog(app.state.sessions).list(action="suggestion_approve")[0].target == "demo-003"
    assert kb.ask("应届生找工作有没有帮扶").faq_id == "demo-003"


def test_conflicting_suggestion_is_shown_and_reject(app: FastAPI) -> None:
    store = SuggestionStore(app.state.kb)
    bad = store.offer("demo-003", "依申请公开多长时间答复", source="ticket", ref="ticket:X:demo-003")
    alice = signed_in(app, "alice")
    page = alice.get("/console/suggestions").text
    assert "依申请公开多长时间答复" in page and "demo-001" in page and "has-conflict" in page
    r = _post(
        alice, "/console/suggestions", csrf=csrf(alice, "/console/suggestions"), action="approve", ids=[bad]
    )
    assert "done=suggestions_refused" in r.headers["location"]
    assert "部分建议问法会与已有问法冲突" in alice.get(r.headers["location"]).text
    r = _post(
        alice, "/console/suggestions", csrf=csrf(alice, "/console/suggestions"), action="reject", ids=[bad]
    )
    assert store.list() == [] and store.list(status="rejected")[0].decided_by == "alice"
    assert "暂无待审核的建议问法" in alice.get("/console/suggestions").text


def test_welcome_pins_in_the_console(app: FastAPI) -> None:
    sue = signed_in(app, "sue")
    token = csrf(sue, "/console/suggestions")
    r = _post(sue, "/console/suggestions/welcome", csrf=token, faq_ids="demo-010 demo-003")
    assert r.status_code == 303
    welcome = TestClient(app).post("/api/v1/sessions", json={}).json()["replies"][0]
    faqs = app.state.kb.faqs
    assert welcome["suggestions"] == [faqs.require("demo-010").question, faqs.require("demo-003").question]
    r = _post(sue, "/console/suggestions/welcome", csrf=token, faq_ids="nope")
    assert r.status_code == 400 and "nope" in r.text
    alice = signed_in(app, "alice")
    assert "欢迎语推荐问题" not in alice.get("/console/suggestions").text
