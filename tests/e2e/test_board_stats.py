"""Issue 17 in headless Chromium: /board/stats at 390x844 (phone) and 1366x900 (desktop), reached from
/board, with its charts readable (the page's font size, no text overlapping, nothing wider than the
screen) and a bad range shown as a Chinese error next to the form; the console dashboard's chart
labels do not overlap at either width. Screenshots go to docs/screenshots/ (when missing or with
POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.test_console import console_login
from tests.e2e.test_widget import screenshot_path
from tests.handoff.console_helpers import PASSWORDS, make_users
from tests.handoff.test_board_stats import EDU, HR, plant

pytestmark = pytest.mark.browser
VIEWPORTS = {"390": {"width": 390, "height": 844}, "1366": {"width": 1366, "height": 900}}

# Pairs of text boxes that overlap, inside each chart matching the selector (direct <text> children).
OVERLAPS = """(selector) => {
  const found = [];
  document.querySelectorAll(selector).forEach((svg, k) => {
    const boxes = [...svg.querySelectorAll(':scope > text')]
      .map(t => [t.textContent, t.getBoundingClientRect()]).filter(([, b]) => b.width > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [s, a] = boxes[i], [u, b] = boxes[j];
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
        found.push(`chart ${k}: "${s}" overlaps "${u}"`);
    }
  });
  return found;
}"""


def new_page(browser: Browser, size: str) -> Page:
    context = browser.new_context(viewport=VIEWPORTS[size], locale="zh-CN")  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context.new_page()


@pytest.mark.parametrize("size", ["390", "1366"])
def test_board_stats_in_chromium(
    browser: Browser,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
    size: str,
) -> None:
    app = create_app(make_settings(demo_url))
    plant(app.state.sessions)
    base = live_server(app)
    page = new_page(browser, size)
    page.goto(base + "/board")
    page.get_by_role("link", name="留言办理情况统计").click()
    expect(page.get_by_role("heading", name="留言办理情况统计")).to_be_visible()

    page.get_by_label("起始月份").fill("2026-04")
    page.get_by_label("截止月份").fill("2026-05")
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".page-head .sub")).to_contain_text("2026年4月至2026年5月收到的留言")
    months = page.get_by_role("img", name="各月收到留言的答复情况")
    expect(months).to_be_visible()
    expect(page.get_by_role("img", name="各部门收到留言的答复情况")).to_be_visible()
    table = page.get_by_role("table", name="2026年4月至2026年5月各部门办理情况")
    expect(table.get_by_role("row", name=EDU)).to_contain_text("66.7%")
    expect(table.get_by_role("row", name=HR)).to_contain_text("100.0%")

    # readable: nothing wider than the screen, chart text at the page's size, no overlapping text
    assert page.evaluate("() => document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"]
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('svg.chart-fluid text')].map(t => parseFloat(getComputedStyle(t).fontSize))"
    )
    assert sizes and min(sizes) >= 12, sizes
    assert page.evaluate(OVERLAPS, "svg.chart-fluid") == []
    inside = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart-fluid')].every(svg => {
            const r = svg.getBoundingClientRect();
            return [...svg.querySelectorAll(':scope > text, :scope > rect')].every(e => {
              const b = e.getBoundingClientRect(); return b.left >= r.left - 1 && b.right <= r.right + 1; });
        })"""
    )
    assert inside
    # a wide table scrolls inside its own region, the page does not
    region = page.get_by_role("region", name="2026年4月至2026年5月各部门分月办理情况")
    expect(region).to_be_visible()
    shot = screenshot_path(f"screenshots/board-stats-{size}.png", tmp_path)
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as img:  # 256 colours: the docs' screenshots stay small
        img.convert("RGB").quantize(256).save(shot, optimize=True)

    # a reversed range: the form again with the error, in Chinese
    page.get_by_label("起始月份").fill("2026-05")
    page.get_by_label("截止月份").fill("2026-04")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("alert")).to_have_text("起始月份不能晚于截止月份")
    expect(page.get_by_label("起始月份")).to_have_value("2026-05")
    page.context.close()


@pytest.mark.parametrize("size", ["390", "1366"])
def test_dashboard_chart_labels_do_not_overlap(
    browser: Browser,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    size: str,
) -> None:
    app = create_app(make_settings(demo_url))
    plant(app.state.sessions)
    make_users(app, EDU)
    base = live_server(app)
    page = new_page(browser, size)
    console_login(page, base, "sue", PASSWORDS["sue"])
    for query in (
        "",
        "?start=2026-04-01&end=2026-05-31",
        "?start=2026-01-01&end=2026-12-31",
        "?start=2026-03-01&end=2026-03-07",
    ):
        page.goto(f"{base}/console/dashboard{query}")
        expect(page.get_by_role("img", name="每日收到留言")).to_be_visible()
        labels = page.evaluate(
            "() => [...document.querySelectorAll('svg.chart')].map(s => s.querySelectorAll(':scope > text').length)"
        )
        assert all(n > 0 for n in labels)
        assert page.evaluate(OVERLAPS, "svg.chart") == [], query
    expect(page.get_by_role("table", name="2026-03-01 至 2026-03-07 各部门办理情况")).to_be_visible()
    page.context.close()
