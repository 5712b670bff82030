"""Issue 13's corrupting session, replayed in headless Chromium against the real app (demo knowledge
base, SQLite and PostgreSQL): a citizen asks three unrelated things in one widget session and then
leaves a message about a park with an address and a phone; staff reply (signing with a name and a
phone), click 生成问答草稿 and 保存并发布. The draft carries only the park question, without the
address, and an answer without the staff member's name and phone; after publishing, every phrasing
of every existing FAQ is answered exactly as before, and the welcome buttons show no citizen text.
Typing a session message into the draft's phrasings is refused with the conflict listed.
Screenshots of the refusal and of /console/suggestions go to docs/screenshots/."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from knowledge.demo import load_demo
from knowledge.suggestions import SuggestionStore
from tests.bot.conftest import make_settings
from tests.e2e.test_console import console_login
from tests.e2e.test_widget import ask, last_bot, open_widget
from tests.handoff.console_helpers import accounts

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PARK = "我家住在市南区香港中路10号3单元，楼下公园的健身器材坏了好几天了，找谁修？"
REPLY = "您好，公园健身器材由区园林局负责维修，已安排本周内修复。经办人张丽，电话13812345678。"


def shot(name: str, tmp_path: Path) -> str:
    """docs/screenshots/NAME when it is missing or POLICYBOT_SCREENSHOTS=1, else a temp file."""
    target = SHOTS / name
    if os.environ.get("POLICYBOT_SCREENSHOTS") == "1" or not target.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        return str(target)
    return str(tmp_path / name)


def answers(app: Any) -> dict[str, str | None]:
    """Every phrasing of every published FAQ -> the FAQ the bot answers it with now."""
    kb = app.state.kb
    kb.refresh(force=True)
    return {p: kb.ask(p).faq_id for e in kb.faqs.index_entries() for p in (e.question, *e.similar)}


def test_corrupting_session_cannot_corrupt(
    page: Page, browser: Browser, live_server: Callable[[Any], str], db_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(db_url))
    load_demo(app.state.kb.faqs, app.state.kb.policies)
    base = live_server(app)
    before = answers(app)
    assert len(before) > 250 and before["依申请公开多久答复"] == "demo-001"

    # the citizen's session: three messages about other things, then a message about a park
    open_widget(page, base + "/?poll_ms=500")
    ask(page, "依申请公开多长时间答复")
    expect(last_bot(page)).to_contain_text("工作日")
    for text in ("知识库", "今天天气怎么样", PARK, "我要留言"):  # then asks for a person: the form at once
        expect(page.locator(".pbw-typing")).to_have_count(0)
        ask(page, text)
        expect(page.locator(".pbw-typing")).to_have_count(0)
    form = page.get_by_role("form", name="留言给工作人员").last
    form.get_by_label("留言内容（必填）").fill(PARK)
    form.get_by_label("姓名（选填）").fill("王五")
    form.get_by_label("联系电话（选填）").fill("13912345678")
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="提交留言").click()
    card = page.locator(".pbw-ticket").first
    expect(card).to_contain_text(re.compile(r"LY\d{8}-\d{4}"))
    found = re.search(r"LY\d{8}-\d{4}", card.inner_text())
    assert found
    no = found.group(0)
    ticket = app.state.tickets.get(no)
    accounts(app).add_user(
        "zhangli",
        "Lotus-Harbor-26!",
        role="staff",
        departments=[ticket.department],
        display_name="张丽",
        by="t",
    )
    accounts(app).add_user("admin", "Admin-pass-2026", role="admin", by="test")

    # staff reply and promote it
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    staff = ctx.new_page()
    console_login(staff, base, "zhangli", "Lotus-Harbor-26!")
    staff.goto(f"{base}/console/tickets/{no}")
    staff.get_by_role("button", name="受理").click()
    staff.get_by_label("答复留言人").fill(REPLY)
    staff.get_by_role("button", name="发送答复").click()
    expect(staff.get_by_role("status")).to_contain_text("答复已保存")
    staff.get_by_role("button", name="生成问答草稿").click()
    expect(staff.get_by_role("status")).to_contain_text("已生成问答草稿")
    question = staff.get_by_label("标准问题").input_value()
    assert question == "楼下公园的健身器材坏了好几天了，找谁修？", question
    expect(staff.get_by_label("相似问法（每行一个）")).to_have_value("")
    answer = staff.get_by_label("答案").input_value()
    assert answer == "您好，公园健身器材由区园林局负责维修，已安排本周内修复。", answer
    staff.get_by_role("button", name="保存并发布").click()
    expect(staff.get_by_role("status")).to_contain_text("问答已发布")
    faq_id = re.search(r"/console/faqs/([^/?]+)", staff.url)
    assert faq_id

    # every existing phrasing is answered exactly as before; the park question by the new FAQ
    after = answers(app)
    assert {p: after[p] for p in before} == before
    assert app.state.kb.ask("楼下公园的健身器材坏了找谁修").faq_id == faq_id.group(1)

    # staff now paste the session's messages into the phrasings: refused, with the conflict listed
    staff.get_by_label("相似问法（每行一个）").fill("依申请公开多长时间答复\n知识库\n今天天气怎么样")
    staff.get_by_role("button", name="保存", exact=True).click()
    expect(staff.get_by_role("alert").first).to_contain_text("未保存")
    expect(staff.locator(".conflicts")).to_contain_text("demo-001")
    expect(staff.get_by_label("相似问法（每行一个）")).to_have_value(re.compile("今天天气怎么样"))
    if "sqlite" in db_url:
        staff.screenshot(path=shot("faq-conflict-desktop.png", tmp_path), full_page=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
        console_login(phone, base, "zhangli", "Lotus-Harbor-26!")
        phone.goto(f"{base}/console/faqs/{faq_id.group(1)}")
        phone.get_by_label("相似问法（每行一个）").fill("依申请公开多长时间答复")
        phone.get_by_role("button", name="保存", exact=True).click()
        expect(phone.locator(".conflicts")).to_contain_text("demo-001")
        phone.screenshot(path=shot("faq-conflict-phone.png", tmp_path), full_page=True)
        phone.context.close()
    assert answers(app) == after

    # the welcome buttons are staff's choice: no citizen text, no address
    citizen = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    open_widget(citizen, base + "/")
    chips = citizen.locator(".pbw-msg-bot").first.locator(".pbw-chip")
    expect(chips.first).to_be_visible()
    texts = chips.all_inner_texts()
    pinned = {app.state.kb.faqs.require(f"demo-00{i}").question for i in range(1, 6)}
    assert set(texts) == pinned and not any("公园" in t or "香港中路" in t for t in texts)
    citizen.context.close()

    # staff answer with an existing FAQ: the wording waits in /console/suggestions
    t2 = app.state.tickets.open(
        question="应届生找工作有没有帮扶",
        channel="web",
        user_ref="c2",
        department=ticket.department,
        transcript=[],
    )
    staff.goto(f"{base}/console/tickets/{t2.no}")
    staff.get_by_role("button", name="受理").click()
    staff.locator("#faq-q").fill("毕业生就业帮扶")
    staff.get_by_role("button", name="搜索").click()
    staff.locator("#faq-results li", has_text="高校毕业生").get_by_role("button", name="插入答案").click()
    staff.get_by_role("button", name="发送答复").click()
    expect(staff.get_by_role("status")).to_contain_text("答复已保存")
    SuggestionStore(app.state.kb).offer("demo-002", "依申请公开多长时间答复", source="clarify", ref="log:e2e")
    admin_ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    admin = admin_ctx.new_page()
    console_login(admin, base, "admin", "Admin-pass-2026")
    admin.goto(f"{base}/console/suggestions")
    row = admin.locator("table.sugg tr", has_text="应届生找工作有没有帮扶")
    expect(row).to_contain_text("留言以问答答复")
    expect(admin.locator("table.sugg tr.has-conflict")).to_contain_text("demo-001")
    if "sqlite" in db_url:
        admin.screenshot(path=shot("suggestions-desktop.png", tmp_path), full_page=True)
        admin.set_viewport_size({"width": 390, "height": 844})
        admin.screenshot(path=shot("suggestions-phone.png", tmp_path), full_page=True)
        admin.set_viewport_size({"width": 1366, "height": 900})
    row.get_by_role("checkbox").check()
    admin.get_by_role("button", name="采纳所选").click()
    expect(admin.get_by_role("status")).to_contain_text("已采纳")
    assert "应届生找工作有没有帮扶" in app.state.kb.faqs.require("demo-003").similar
    final = answers(app)
    assert {p: final[p] for p in before} == before
    admin_ctx.close()
    ctx.close()
