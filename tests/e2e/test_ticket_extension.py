"""A 延期 on the ticket page in headless Chromium, on a desktop and on a phone (390x844): the handler
requests 3 more working days with a reason, a supervisor approves it in their own session, and the
page shows the new due date (hand-computed: a 投诉 of Mon 2026-09-28 with 10 working days is due Fri
10-16 across National Day and the 调休 Saturday 10-10; 3 more: 10-19, 10-20, 10-21). The phone page
never scrolls sideways. Screenshots: docs/screenshots/console-ticket-extension-{desktop,phone}.png.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from bot.app import create_app
from knowledge.models import CHINA_TZ
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.a11y import horizontal_overflow, small_screenshot
from tests.e2e.test_console import console_login
from tests.handoff.console_helpers import PASSWORDS, make_users

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_extension_request_and_approval(
    browser: Browser,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
    device: str,
) -> None:
    app = create_app(make_settings(demo_url, sla_days={"投诉": 10}))
    app.state.tickets._clock = lambda: dt.datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)  # frozen ticket clock
    t = app.state.tickets.open(
        question="社保卡补办一个月还没办好", channel="web", user_ref="c1", category="投诉"
    )
    assert t.due_date == dt.date(2026, 10, 16)
    make_users(app, t.department)
    base = live_server(app)
    phone = device == "phone"

    def session(username: str) -> Any:
        context = browser.new_context(viewport=VIEWPORTS[device], locale="zh-CN", is_mobile=phone)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        page = context.new_page()
        console_login(page, base, username, PASSWORDS[username])
        expect(page.locator("main")).to_be_visible()
        page.goto(f"{base}/console/tickets/{t.no}")
        return context, page

    ctx, page = session("alice")
    card = page.locator("#sla")
    expect(card).to_contain_text("10 个工作日")
    card.get_by_label("延长").fill("3")
    card.get_by_label("延期原因").fill("涉及人社、医保两个部门，需会商后答复")
    card.get_by_role("button", name="申请延期").click()
    expect(page.locator(".flash.ok")).to_contain_text("延期申请已提交")
    expect(page.locator("#sla")).to_contain_text("待审批")
    expect(page.locator("#sla")).to_contain_text("须由其他督办人员审批")
    ctx.close()

    ctx, page = session("sue")
    card = page.locator("#sla")
    expect(card).to_contain_text("申请延长 3 个工作日")
    card.get_by_label("审批意见（选填）").fill("同意延期")
    card.get_by_role("button", name="批准延期").click()
    expect(page.locator(".flash.ok")).to_contain_text("已批准延期")
    expect(page.locator(".facts")).to_contain_text("2026-10-21")
    expect(page.locator("#sla")).to_contain_text("+ 延期 3 个工作日")
    expect(page.locator(".timeline")).to_contain_text("2026-10-16 → 2026-10-21")
    assert app.state.tickets.get(t.no).due_date == dt.date(2026, 10, 21)
    if phone:
        assert horizontal_overflow(page) <= 0, "the ticket page scrolls sideways on a phone"
    page.locator("#sla").scroll_into_view_if_needed()
    small_screenshot(page, f"console-ticket-extension-{device}", tmp_path)
    ctx.close()
    assert re.match(r"^LY\d{8}-\d{4}$", t.no)
