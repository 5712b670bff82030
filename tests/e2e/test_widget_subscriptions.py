"""The widget's subscription checkboxes (政策订阅) in headless Chromium on a phone (390x844), against
the real app with a tag catalogue: the topics appear as labelled checkboxes, saving stores them for
the widget session's user (what a publication then pushes to), unticking removes them, and a policy
published on a followed topic arrives in the conversation through GET /api/v1/messages. Screenshot
in docs/screenshots/widget-subscriptions-phone.png (when missing or with POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from bot.app import create_app
from knowledge.policies.tags import TagCatalogue
from knowledge.subscriptions import SubscriptionStore
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
SHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "widget-subscriptions-phone.png"


def test_widget_subscription_checkboxes_on_a_phone(
    browser: Browser, live_server: Callable[[Any], str], demo_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(demo_url, push_quiet_hours=""))
    tags = tmp_path / "tags.csv"
    tags.write_text("标签,同义词\n就业创业,就业\n社会保障,社保\n教育,\n", encoding="utf-8")
    TagCatalogue(app.state.sessions).import_file(tags)
    url = live_server(app)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(url + "/?poll_ms=500")
        page.get_by_role("button", name=re.compile("^打开政策咨询")).click()
        expect(page.locator(".pbw-msg-bot").first).to_contain_text("您好")
        page.get_by_role("button", name="政策订阅").click()
        box = page.get_by_role("checkbox", name="就业创业")
        expect(box).to_be_visible()
        expect(page.get_by_role("checkbox")).to_have_count(3)
        box.check()
        page.get_by_role("checkbox", name="社会保障").check()
        page.get_by_role("button", name="保存订阅").click()
        expect(page.locator(".pbw-subs-status")).to_have_text("已保存订阅：就业创业、社会保障")
        target = (
            SHOT
            if os.environ.get("POLICYBOT_SCREENSHOTS") == "1" or not SHOT.exists()
            else tmp_path / SHOT.name
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), type="png")
        store = SubscriptionStore(app.state.sessions)
        (web_user,) = {r.user_id for r in store.list(channel="web")}
        assert store.tags_of("web", web_user) == ["就业创业", "社会保障"]

        page.get_by_role("checkbox", name="社会保障").uncheck()
        page.get_by_role("button", name="保存订阅").click()
        expect(page.locator(".pbw-subs-status")).to_have_text("已保存订阅：就业创业")
        assert store.tags_of("web", web_user) == ["就业创业"]

        app.state.kb.policies.import_text(
            "第一条 对首次创业的高校毕业生给予一次性创业补贴。",
            title="关于一次性创业补贴的通知",
            tags=["就业"],
        )
        app.state.outbox.drain()
        expect(page.locator(".pbw-msg-bot").last).to_contain_text("关于一次性创业补贴的通知", timeout=15_000)
    finally:
        context.close()
