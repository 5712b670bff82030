"""The console's live count in real Chromium, on a desktop window and a phone (390x844): a ticket
left through the chat API (/api/v1/chat, /api/v1/tickets) raises the navigation badge and the
queue's 待受理 count without a reload, the queue shows "有 N 条新留言，点击刷新" (a click shows the
row), and after a click on "开启桌面提醒" (never before: the permission stays untouched on load) a
desktop notification is raised. Screenshots go to docs/screenshots/ (when missing or
POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.a11y import horizontal_overflow, small_screenshot
from tests.e2e.test_console import console_login
from tests.handoff.console_helpers import PASSWORDS, make_users

pytestmark = pytest.mark.browser

# Records every desktop notification the page raises (the browser shows none when headless).
NOTIFICATION_SPY = """(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notes = [];
  function Spy(title, options) {
    window.__notes.push({ title: title, body: (options || {}).body || "" });
    return new Real(title, options);
  }
  Object.defineProperty(Spy, "permission", { get: () => Real.permission });
  Spy.requestPermission = (cb) => Real.requestPermission(cb);
  window.Notification = Spy;
})();"""


def leave_ticket(base: str, question: str) -> str:
    """A citizen's message through the website channel's API, as the widget sends it."""
    with httpx.Client(base_url=base, timeout=10) as http:
        session = http.post("/api/v1/chat", json={"session": None, "text": "你好"}).json()["session"]
        r = http.post("/api/v1/tickets", json={"session": session, "question": question})
        assert r.status_code == 200, r.text
        return str(r.json()["ticket_no"])


def _queue(page: Page, base: str) -> None:
    console_login(page, base, "sue", PASSWORDS["sue"])
    page.goto(f"{base}/console/queue")
    expect(page.get_by_role("heading", level=1, name="留言办理")).to_be_visible()


def _pending(page: Page) -> Any:
    return page.locator('ul.counts a[data-live-status="待受理"] b')


def test_live_count_desktop_and_phone(
    browser: Browser,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(demo_url, console_live_poll_seconds=1))
    make_users(app, "政务公开办公室")
    base = live_server(app)

    # --- desktop ----------------------------------------------------------------------------------
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(10_000)
    context.add_init_script(NOTIFICATION_SPY)
    page = context.new_page()
    _queue(page, base)
    badge = page.locator("nav [data-live-count]")
    expect(_pending(page)).to_have_text("0")
    expect(badge).to_be_hidden()  # nothing new yet
    button = page.get_by_role("button", name="开启桌面提醒")
    expect(button).to_be_visible()
    assert page.evaluate("Notification.permission") == "default"  # not asked on load
    context.grant_permissions(["notifications"], origin=base)  # what the user answers to the prompt
    button.click()
    expect(page.locator("#live-notify")).to_have_text("已开启桌面提醒")

    first = leave_ticket(base, "我想咨询一下灵活就业人员参加社保的补贴怎么领取")
    expect(badge).to_have_text("1")  # the next poll, without a reload
    expect(badge).to_be_visible()
    expect(_pending(page)).to_have_text("1")
    expect(page.locator('ul.counts a[data-live-status="all"] b')).to_have_text("1")
    bar = page.get_by_role("link", name="有 1 条新留言，点击刷新")
    expect(bar).to_be_visible()
    page.wait_for_function("window.__notes && window.__notes.length === 1")
    note = page.evaluate("window.__notes[0]")
    assert note["title"] == "新的政策留言" and "1" in note["body"]
    small_screenshot(page, "console-live-count-desktop", tmp_path)
    bar.click()
    expect(page.get_by_role("link", name=first)).to_be_visible()  # the list now has the row
    expect(page.locator("#live-new")).to_be_hidden()
    context.close()

    # --- phone ------------------------------------------------------------------------------------
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    phone = context.new_page()
    _queue(phone, base)
    expect(_pending(phone)).to_have_text("1")
    expect(phone.get_by_role("button", name="开启桌面提醒")).to_be_visible()
    second = leave_ticket(base, "请问退休人员异地安置后医保待遇怎么办理")
    expect(_pending(phone)).to_have_text("2")
    expect(phone.locator("nav [data-live-count]")).to_have_text("2")
    bar = phone.get_by_role("link", name="有 1 条新留言，点击刷新")
    expect(bar).to_be_visible()
    assert horizontal_overflow(phone) <= 0  # the bar and the button fit the phone
    small_screenshot(phone, "console-live-count-390", tmp_path)
    bar.click()
    expect(phone.get_by_role("link", name=second)).to_be_visible()
    context.close()
