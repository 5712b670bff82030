"""The ticket page's handling in headless Chromium, on a desktop and on a phone (390x844): a canned reply
picked with the keyboard after typing "/", an interim reply (the ticket stays 待受理, the text in the
history), the duplicate hint and a merge, the merged ticket's note, and the queue's phone search
(masked) and bulk checkboxes. Nothing scrolls sideways. Screenshots: docs/screenshots/ticket-handling-*
and queue-search-* (when missing or POLICYBOT_SCREENSHOTS=1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from handoff.models import ReplyTemplate
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.a11y import horizontal_overflow, small_screenshot
from tests.e2e.test_console import console_login
from tests.handoff.console_helpers import PASSWORDS, make_users

pytestmark = pytest.mark.browser

DEPT = "区发展改革委"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=sorted(VIEWPORTS))
def screen(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[str, Page]]:
    name = str(request.param)
    context = browser.new_context(viewport=VIEWPORTS[name], locale="zh-CN", is_mobile=name == "phone")
    context.set_default_timeout(10_000)
    yield name, context.new_page()
    context.close()


def test_interim_reply_and_merge(
    screen: tuple[str, Page],
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    name, page = screen
    app = create_app(make_settings(demo_url))
    tickets = app.state.tickets
    kept = tickets.open(
        question="小微企业房租补贴怎么申请？",
        channel="web",
        user_ref="u-1",
        department=DEPT,
        contact_name="王五",
        contact_phone="13912345678",
        consent=True,
    )
    dup = tickets.open(
        question="请问小微企业的房租补贴如何申请？", channel="web", user_ref="u-2", department=DEPT
    )
    make_users(app, DEPT)
    with app.state.sessions.begin() as s:
        s.add(ReplyTemplate(title="正在核实", body="您的留言已收到，我们正在核实相关情况，将在期限内答复。"))
        s.add(ReplyTemplate(title="材料补充", body="请补充营业执照复印件。"))
    base = live_server(app)
    console_login(page, base, "alice", PASSWORDS["alice"])
    expect(page.get_by_role("heading", level=1).first).to_be_visible()

    # interim reply with a canned text chosen by keyboard
    page.goto(f"{base}/console/tickets/{kept.no}")
    box = page.locator("#interim-text")
    box.click()
    box.press("/")
    canned = page.locator("#canned-list")
    expect(canned).to_be_visible()
    box.type("核实")  # filters the list
    expect(canned.locator("li:not([hidden])")).to_have_count(1)
    box.press("Enter")
    expect(canned).to_be_hidden()
    assert box.input_value() == "您的留言已收到，我们正在核实相关情况，将在期限内答复。"
    page.get_by_role("button", name="发送阶段性答复").click()
    expect(page.get_by_role("status")).to_contain_text("阶段性答复已保存")
    expect(page.locator(".badge.big").first).to_have_text("待受理")
    expect(page.locator("li.ev.interim")).to_contain_text("正在核实相关情况")
    assert tickets.get(kept.no).reply is None

    # the duplicate's page hints the kept ticket; merge it
    page.goto(f"{base}/console/tickets/{dup.no}")
    hint = page.locator("#duplicates")
    expect(hint).to_contain_text(kept.no)
    expect(hint).to_contain_text("内容相似度")
    hint.get_by_role("button", name=f"将本留言合并到 {kept.no}").click()
    expect(page.get_by_role("status")).to_contain_text("留言已合并")
    expect(page.locator(".merged-note")).to_contain_text(kept.no)
    assert tickets.get(dup.no).merged_into == kept.no

    page.goto(f"{base}/console/tickets/{kept.no}")
    expect(page.locator("#duplicates")).to_contain_text("已合并到本留言")
    assert horizontal_overflow(page) <= 0, "the ticket page scrolls sideways"
    page.locator("#interim").scroll_into_view_if_needed()
    small_screenshot(page, f"ticket-handling-{name}", tmp_path, full_page=True)

    # the queue: phone search masked, bulk checkboxes, the merged ticket hidden
    page.goto(f"{base}/console/queue?q=13912345678")
    expect(page.locator("table.queue")).to_contain_text(kept.no)
    expect(page.locator("table.queue")).to_contain_text("139****5678")
    expect(page.locator("table.queue")).not_to_contain_text(dup.no)
    assert "13912345678" not in page.locator("table.queue").inner_text()
    page.get_by_label(f"选择 {kept.no}").check()
    assert horizontal_overflow(page) <= 0, "the queue scrolls sideways"
    small_screenshot(page, f"queue-search-{name}", tmp_path)
