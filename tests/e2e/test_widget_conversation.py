"""The conversation flows in the website widget on a phone (390x844), against the real service on a
demo database: a greeting with popular questions, an honest "not my field", an answer with one
citation, 没用 leading to the next-best questions and the staff form in the same message, a complaint
request opening the form with its category preset, the one ticket card, and a staff reply rated where
it arrives (不满意 reopens it). Screenshots of each step go to docs/screenshots/conversation-*.png."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_widget import ask, last_bot

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def demo_app(tmp_path: Path) -> Any:
    from bot.app import create_app
    from bot.database import upgrade
    from bot.settings import Settings
    from knowledge.db import make_engine, make_sessionmaker
    from knowledge.demo import load_demo
    from knowledge.faqs import FaqStore
    from knowledge.policies import PolicyStore

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_demo(FaqStore(make_sessionmaker(engine)), PolicyStore(make_sessionmaker(engine)))
    engine.dispose()
    return create_app(
        Settings(
            database_url=url,
            secret_key="browser-test-secret-of-32-chars-00",
            demo=True,
            rate_limit_per_ip=0,
            rate_limit_per_session=0,
            index_refresh_seconds=0.0,
            spool_dir=str(tmp_path / "spool"),
        )
    )


@pytest.fixture
def phone(browser: Any) -> Any:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"conversation-{name}.png"))


def open_chat(page: Page, base: str) -> None:
    page.goto(base + "/?poll_ms=500")
    page.get_by_role("button", name=re.compile("^打开政策咨询")).tap()
    expect(page.get_by_role("dialog", name="政策咨询")).to_be_visible()


def test_widget_conversation_on_a_phone(
    phone: Page, demo_app: Any, live_server: Callable[[Any], str]
) -> None:
    page = phone
    open_chat(page, live_server(demo_app))

    ask(page, "你好")
    greeting = last_bot(page)
    expect(greeting).to_contain_text("我是政策咨询助手")
    expect(greeting.locator(".pbw-chip")).to_have_count(3)
    expect(greeting.get_by_role("form")).to_have_count(0)
    ask(page, "今天天气怎么样")
    expect(last_bot(page)).to_contain_text("不在政策咨询的范围内")
    expect(last_bot(page).get_by_role("form")).to_have_count(0)
    shot(page, "1-smalltalk")

    ask(page, "依申请公开多久答复")
    answer = last_bot(page)
    expect(answer).to_contain_text("20个工作日")
    assert answer.inner_text().count("青人社〔2023〕11号") == 1  # one citation
    expect(answer.locator(".pbw-sources-label")).to_have_count(0)
    answer.get_by_role("button", name="没用").tap()
    follow = last_bot(page)
    expect(follow).to_contain_text("您想问的是不是下面的问题")
    expect(follow.locator(".pbw-chip")).not_to_have_count(0)
    expect(follow.get_by_role("form", name="留言给工作人员")).to_be_visible()
    # the answer, its rating and what follows, from the top of the answer (the log scrolls, not the page)
    answer.evaluate(
        "e => { const log = e.closest('.pbw-messages'); log.scrollTop = e.offsetTop - log.offsetTop; }"
    )
    shot(page, "2-useless")

    ask(page, "我要投诉")
    form = last_bot(page).get_by_role("form", name="留言给工作人员")
    expect(form.get_by_label("留言类型")).to_have_value("投诉")
    form.get_by_label("留言内容（必填）").fill("窗口工作人员办事拖拉，材料收了一个月没回音")
    form.get_by_role("button", name="提交留言").tap()
    card = page.locator(".pbw-ticket").last
    expect(card).to_contain_text(re.compile(r"LY\d{8}-\d{4}"))
    text = card.inner_text()
    no = re.search(r"LY\d{8}-\d{4}", text)
    assert no and text.count(no.group(0)) == 1 and text.count("查询码") == 2 and "验证码" not in text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text) and not re.search(r"\d{4}-\d{2}-\d{2}", text)
    ticket = demo_app.state.tickets.get(no.group(0))
    assert ticket.category == "投诉"
    shot(page, "3-ticket")

    demo_app.state.tickets.reply(ticket.no, staff="王科员", text="已约谈窗口负责人，材料将于本周内办结。")
    pushed = page.locator(".pbw-msg-bot", has_text="已约谈窗口负责人")
    expect(pushed).to_be_visible(timeout=15_000)
    pushed.get_by_role("button", name="不满意").tap()
    expect(pushed.locator(".pbw-rating-status")).to_contain_text("重新交给工作人员")
    shot(page, "4-staff-reply-rated")
    t = demo_app.state.tickets.get(ticket.no)
    assert t.rating == "不满意" and t.status == "办理中" and t.flagged
