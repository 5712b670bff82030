"""Issue 6 acceptance in headless Chromium: a generated weekly report (HTML file) renders its chart
and topics table; the console's weekly report page and dashboard render for a supervisor (server-side
PNG and SVG charts, no JavaScript needed). Screenshots go to docs/report-weekly.png,
docs/console-weekly.png and docs/console-dashboard.png (when missing or with POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from bot.app import create_app
from bot.reporting import generate
from knowledge.gaps import parse_week
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.test_console import console_login
from tests.e2e.test_widget import screenshot_path
from tests.handoff.console_helpers import PASSWORDS
from tests.handoff.report_seed import seed_week

pytestmark = pytest.mark.browser


def test_weekly_report_html_in_chromium(page: Page, demo_url: str, tmp_path: Path) -> None:  # noqa: F811
    app = create_app(make_settings(demo_url))
    seeded = seed_week(app)
    result = generate(app.state.sessions, app.state.kb, out_dir=tmp_path / "reports", week=seeded.week)
    overview = next(f for f in result.files if f.unit is None)
    page.goto(overview.html.resolve().as_uri())
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"未解答问题周报（{seeded.week}）")
    chart = page.get_by_role("img", name="每日提问量与主要主题")
    expect(chart).to_be_visible()
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 0
    rows = page.locator("table").filter(has_text="代表性问题").locator("tr")
    assert rows.count() >= 4  # header + three topics
    expect(page.locator("table").filter(has_text="代表性问题")).to_contain_text("新生儿医保")
    expect(page.get_by_text(seeded.ticket_no).first).to_be_visible()
    page.screenshot(path=str(screenshot_path("report-weekly.png", tmp_path)), full_page=True)


def test_console_weekly_and_dashboard(
    page: Page,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(demo_url))
    seeded = seed_week(app)
    base = live_server(app)
    console_login(page, base, "sue", PASSWORDS["sue"])

    page.goto(f"{base}/console/weekly/{seeded.week}")
    chart = page.get_by_role("img", name="每日提问量与未解答问题主题图表")
    expect(chart).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.report-chart'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.get_by_role("button", name="生成问答草稿").first).to_be_visible()
    page.screenshot(path=str(screenshot_path("console-weekly.png", tmp_path)), full_page=True)

    period = parse_week(seeded.week)
    page.goto(f"{base}/console/dashboard?start={period.start_day:%Y-%m-%d}&end={period.end_day:%Y-%m-%d}")
    expect(page.get_by_role("heading", name="数据看板")).to_be_visible()
    daily = page.get_by_role("img", name="每日提问量（按渠道）")
    expect(daily).to_be_visible()
    assert daily.bounding_box()["height"] > 100  # type: ignore[index]
    expect(page.locator(".kpis")).to_contain_text("提问总数")
    expect(page.get_by_role("img", name="热门问答")).to_be_visible()
    page.screenshot(path=str(screenshot_path("console-dashboard.png", tmp_path)), full_page=True)
