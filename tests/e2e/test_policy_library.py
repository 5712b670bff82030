"""The public policy library in headless Chromium at 390x844 (phone) and 1366x900 (desktop), against
the real app on the demo knowledge base with one document repealed and replaced: the list with its
validity labels, 文号 and tags, filtering and search through the labelled controls, the repealed
document's page pointing to its replacement, an answer's citation landing on the exact article, the
related documents and the FAQs citing it. Screenshots go to docs/screenshots/ (when missing or with
POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OLD = "qingpu-rsj-2023"
NEW_ID = "qingpu-rsj-2025"
NEW_TITLE = "青浦区人力资源和社会保障局2025年政务公开工作要点"
NEW = f"""{NEW_TITLE}
青人社〔2025〕3号
一、总体要求
全面落实政务公开各项制度，持续提升公开质量。
二、重点任务
（一）主动公开重点领域信息。按规定公开就业创业、社会保险等领域政策文件。
（二）规范办理依申请公开。收到政府信息公开申请之日起15个工作日内予以答复，不能当场答复的及时告知申请人。
（三）加强政策解读。重要政策文件与解读材料同步起草、同步审签、同步发布。
三、保障措施
各科室要落实责任，确保各项任务按时完成。
青浦区人力资源和社会保障局
2025年2月10日
"""
READING = """关于《青浦区人力资源和社会保障局2025年政务公开工作要点》的政策解读
一、起草背景
为进一步做好政务公开工作，结合本局实际，制定本要点。
二、主要内容
要点明确了依申请公开的答复时限为15个工作日。
"""


def shot(page: Page, name: str, tmp_path: Path) -> None:
    target = SHOTS / name
    if os.environ.get("POLICYBOT_SCREENSHOTS") != "1" and target.exists():
        target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=False, type="png")


@pytest.fixture
def library(live_server: Callable[[Any], str], demo_url: str) -> tuple[FastAPI, str]:
    app = create_app(make_settings(demo_url))
    store = app.state.kb.policies
    store.import_text(NEW, id=NEW_ID, issuer="青浦区人力资源和社会保障局", tags=["政务公开", "就业创业"])
    store.import_text(
        READING, id="qingpu-rsj-2025-jd", issuer="青浦区人力资源和社会保障局", tags=["政务公开"]
    )
    store.relate(NEW_ID, "解读", "qingpu-rsj-2025-jd", by="test")
    store.set_status(OLD, "废止", by="test", replaced_by=NEW_ID)
    return app, live_server(app)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page scrolls sideways: {width}px"


@pytest.mark.parametrize("size", [(390, 844), (1366, 900)], ids=["phone", "desktop"])
def test_policy_list_filters_and_search(
    browser: Browser, library: tuple[FastAPI, str], size: tuple[int, int], tmp_path: Path
) -> None:
    _, base = library
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(base + "/policies")
    expect(page.get_by_role("heading", name="政策文件库", level=1)).to_be_visible()
    items = page.locator(".lib-item")
    assert items.count() == 7  # five demo documents and the two imported
    new_item = items.filter(has=page.locator(f'.lib-title a[href="/policies/{NEW_ID}"]'))
    expect(new_item.locator(".badge")).to_have_text("有效")
    expect(new_item).to_contain_text("青人社〔2025〕3号")
    expect(new_item.get_by_role("link", name="就业创业")).to_be_visible()
    old_item = items.filter(has=page.locator(f'.lib-title a[href="/policies/{OLD}"]'))
    expect(old_item.locator(".badge")).to_have_text("废止")
    expect(old_item).to_contain_text("已被替代")
    no_horizontal_scroll(page)
    shot(page, f"policies-{'phone' if size[0] < 500 else 'desktop'}.png", tmp_path)

    page.get_by_role("search").get_by_label("有效性").select_option("废止")
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".lib-item")).to_have_count(1)
    expect(page.get_by_role("status")).to_contain_text("共 1 份文件")
    page.get_by_role("link", name="清除筛选").click()
    page.get_by_role("search").get_by_label("搜索").fill("青人社〔2025〕")
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".lib-item")).to_have_count(1)
    expect(page.locator(".lib-item")).to_contain_text("青人社〔2025〕3号")
    page.get_by_role("link", name="清除筛选").click()
    page.get_by_role("search").get_by_label("标签").select_option("就业创业")
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".lib-item")).to_have_count(1)
    ctx.close()


@pytest.mark.parametrize("size", [(390, 844), (1366, 900)], ids=["phone", "desktop"])
def test_policy_page_replacement_anchor_related_and_faqs(
    browser: Browser, library: tuple[FastAPI, str], size: tuple[int, int], tmp_path: Path
) -> None:
    app, base = library
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    page = ctx.new_page()
    # the answer's citation links to the exact article of the current document
    answer = app.state.kb.ask("依申请公开多长时间答复")
    assert answer.superseded is not None
    page.goto(base + answer.sources[0].article_url)
    target = page.locator(".lib-article:target")
    expect(target).to_be_visible()
    expect(target).to_contain_text("15个工作日")
    expect(target).to_be_in_viewport()
    expect(page.locator(".badge.big")).to_have_text("有效")
    related = page.get_by_role("region", name="相关文件")
    expect(related.get_by_role("heading", name="解读")).to_be_visible()
    expect(related.get_by_role("link", name=f"《关于《{NEW_TITLE}》的政策解读》")).to_be_visible()
    expect(page.get_by_text("本文件替代：")).to_be_visible()
    no_horizontal_scroll(page)
    shot(page, f"policy-article-{'phone' if size[0] < 500 else 'desktop'}.png", tmp_path)

    # the repealed document says so and links to its replacement; its FAQs are listed
    page.goto(f"{base}/policies/{OLD}")
    expect(page.locator(".badge.big")).to_have_text("废止")
    notice = page.get_by_role("note")
    expect(notice).to_contain_text("本文件已废止，已被")
    no_horizontal_scroll(page)
    shot(page, f"policy-repealed-{'phone' if size[0] < 500 else 'desktop'}.png", tmp_path)
    faqs = page.get_by_role("region", name="引用本文件的常见问题")
    expect(faqs.locator("summary").first).to_be_visible()
    faqs.locator("summary", has_text="依申请公开").first.click()
    expect(faqs.locator("details[open]")).to_contain_text("20个工作日")
    expect(faqs).to_contain_text("仅供查阅")
    notice.get_by_role("link", name=f"《{NEW_TITLE}》").click()
    expect(page.get_by_role("heading", name=NEW_TITLE, level=1)).to_be_visible()
    page.goto(f"{base}/policies/no-such-policy")
    expect(page.get_by_role("heading", name="未找到该文件")).to_be_visible()
    ctx.close()
