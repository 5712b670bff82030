"""The knowledge base in the console and the public FAQ list in headless Chromium (live server, demo
knowledge base), each at 1366x900 and at 390x844: staff list every FAQ, search by text and by the
matcher, filter, open one, edit it, retire it and restore it from the history; upload a file, read the
dry run, confirm it; run a hit test; a citizen opens /faq, searches and reads an answer. No page
scrolls sideways on a phone. Screenshots go to docs/screenshots/ (when missing or with
POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.test_console import console_login
from tests.handoff.console_helpers import PASSWORDS, make_users

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UNIT = "青浦区人力资源和社会保障局"
VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}


def shot(page: Page, name: str, tmp_path: Path, focus: str | None = None) -> None:
    """A viewport screenshot, scrolled to `focus` (a CSS selector) when given."""
    if focus:
        page.locator(focus).first.scroll_into_view_if_needed()
    target = SHOTS / name
    if os.environ.get("POLICYBOT_SCREENSHOTS") != "1" and target.exists():
        target = tmp_path / name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=False)


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None and width <= viewport["width"], f"page is {width}px wide"


@pytest.fixture(params=list(VIEWPORTS))
def view(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def site(live_server: Callable[[Any], str], demo_url: str) -> tuple[FastAPI, str]:  # noqa: F811
    app = create_app(make_settings(demo_url))
    make_users(app, UNIT)
    return app, live_server(app)


@pytest.fixture
def staff(browser: Browser, site: tuple[FastAPI, str], view: str) -> Iterator[Page]:
    width, height = VIEWPORTS[view]
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    console_login(page, site[1], "alice", PASSWORDS["alice"])
    expect(page.get_by_role("heading", name="留言办理")).to_be_visible()
    yield page
    ctx.close()


def test_list_search_filter_edit_retire_restore(
    staff: Page, site: tuple[FastAPI, str], view: str, tmp_path: Path
) -> None:
    app, base = site
    page = staff
    page.goto(base + "/console/faqs")
    expect(page.get_by_role("heading", name="问答库", exact=True)).to_be_visible()
    expect(page.locator("p.sub")).to_contain_text("共 69 条")
    no_sideways_scroll(page)
    search = page.get_by_role("search", name="检索问答")
    search.get_by_label("关键词或用户问法").fill("申请政府信息公开要等几天")
    search.get_by_label("检索方式").select_option("match")
    search.get_by_role("button", name="检索").click()
    first = page.locator("table.kb tbody tr").first
    expect(first).to_contain_text("demo-001")
    expect(first).to_contain_text("匹配 ")
    shot(page, f"console-faqs-{view}.png", tmp_path)
    # filters: text search within one drafting unit and tag
    page.goto(base + "/console/faqs")
    search = page.get_by_role("search", name="检索问答")
    search.get_by_label("关键词或用户问法").fill("公开")
    search.get_by_label("制文单位").select_option(UNIT)
    search.get_by_label("标签").select_option("依申请公开")
    search.get_by_role("button", name="检索").click()
    rows = page.locator("table.kb tbody tr")
    expect(rows.first).to_contain_text("demo-001")
    for text in rows.all_inner_texts():
        assert UNIT in text
    # open, edit and save
    rows.first.get_by_role("link", name="demo-001").click()
    expect(page.get_by_role("heading", name=re.compile("demo-001"))).to_be_visible()
    answer = page.get_by_label("答案")
    answer.fill(answer.input_value().replace("20个工作日", "15个工作日"))
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("已保存")
    expect(page.locator(".history")).to_contain_text("第 2 版")
    expect(page.locator(".history ins").first).to_have_text("15")
    # retire with a reason: the bot stops answering with it
    page.get_by_label("下线原因").fill("测试下线")
    page.get_by_role("button", name="下线", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("问答已下线")
    expect(page.locator(".page-head .badge")).to_have_text("已下线")
    assert app.state.kb.ask("依申请公开多久答复").faq_id != "demo-001"
    no_sideways_scroll(page)
    shot(page, f"console-faq-history-{view}.png", tmp_path, ".history")
    # restore the first version from the history
    page.get_by_role("button", name="恢复到第 1 版").click()
    expect(page.get_by_role("status")).to_contain_text("已恢复")
    expect(page.locator(".page-head .badge")).to_have_text("已发布")
    assert "20个工作日" in page.get_by_label("答案").input_value()
    assert app.state.kb.ask("依申请公开多久答复").faq_id == "demo-001"


def test_upload_dry_run_then_confirm(
    staff: Page, site: tuple[FastAPI, str], view: str, tmp_path: Path
) -> None:
    app, base = site
    page = staff
    page.goto(base + "/console/faqs")
    page.get_by_role("link", name="导入文件").click()
    expect(page.get_by_role("heading", name="导入问答")).to_be_visible()
    csv_file = tmp_path / "新问答.csv"
    csv_file.write_text(
        "编号,标准问题,答案,制文单位\n"
        "demo-002,人社局主动公开信息遵循什么原则,坚持公开为原则、不公开为例外。,青浦区人力资源和社会保障局\n"
        ",人社局政务公开咨询电话是多少,请拨打12333。,青浦区人力资源和社会保障局\n",
        encoding="utf-8",
    )
    before = app.state.kb.faqs.version()
    page.get_by_label("问答文件（xlsx / csv / jsonl）").set_input_files(str(csv_file))
    page.get_by_role("button", name="上传并试导入").click()
    report = page.locator("section.dry-run")
    expect(report).to_contain_text("试导入（未写入）")
    expect(report).to_contain_text("将新增 1 条")
    expect(report).to_contain_text("将更新 1 条")
    expect(report.locator("table")).to_contain_text("人社局政务公开咨询电话是多少")
    assert app.state.kb.faqs.version() == before  # nothing written yet
    no_sideways_scroll(page)
    shot(page, f"console-import-dry-run-{view}.png", tmp_path, "section.dry-run")
    page.get_by_role("button", name=re.compile("^确认导入")).click()
    expect(page.get_by_role("status")).to_contain_text("导入完成")
    expect(page.locator("table.kb")).to_contain_text("人社局政务公开咨询电话是多少")
    assert app.state.kb.faqs.get("demo-002").answer == "坚持公开为原则、不公开为例外。"


def test_hit_test(staff: Page, site: tuple[FastAPI, str], view: str, tmp_path: Path) -> None:
    app, base = site
    page = staff
    page.goto(base + "/console/hit-test")
    page.get_by_label("用户问题").fill("请问，依申请公開多久答复？")
    page.get_by_role("button", name="测试").click()
    expect(page.locator(".decision h2")).to_contain_text("直接回答")
    answer = app.state.kb.thresholds.answer  # calibrated from the store itself
    expect(page.locator(".checks")).to_contain_text(f"直接回答阈值 {answer:.2f}")
    expect(page.locator(".stages")).to_contain_text("依申请公开多久答复")  # traditional 開 made simplified
    expect(page.locator(".hit-table tbody tr").first).to_contain_text("demo-001")
    no_sideways_scroll(page)
    shot(page, f"console-hit-test-{view}.png", tmp_path)


def test_public_faq_list(browser: Browser, site: tuple[FastAPI, str], view: str, tmp_path: Path) -> None:
    _, base = site
    width, height = VIEWPORTS[view]
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(base + "/faq")
    expect(page.get_by_role("heading", name="常见问题解答", level=1)).to_be_visible()
    toc = page.get_by_role("navigation", name="政策文件目录")
    expect(toc).to_contain_text("青人社〔2023〕11号")
    no_sideways_scroll(page)
    shot(page, f"public-faq-{view}.png", tmp_path)
    entry = page.locator("details#faq-demo-001")
    entry.locator("summary").click()
    expect(entry).to_contain_text("20个工作日")
    expect(entry).to_contain_text("二(二)")
    page.get_by_label("搜索问题").fill("申请政府信息公开要等几天")
    page.get_by_role("button", name="搜索").click()
    results = page.locator("section.results")
    expect(results.locator("details").first).to_contain_text("依申请公开多久答复")
    expect(results.locator("details").first).to_contain_text("20个工作日")  # results open
    no_sideways_scroll(page)
    ctx.close()
