"""Issue 17, phone-first: the staff console and the weekly report's HTML at 390 px in headless
Chromium. No page scrolls sideways; a table wider than the screen scrolls in its own box with its
first column fixed and can be reached by keyboard (the queue becomes cards); no column is squeezed
to a character or two; every console page links the favicon. Screenshots of the queue, the weekly
report page and the e-mailed report go to docs/screenshots/ (when missing or POLICYBOT_SCREENSHOTS=1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from bot.reporting import generate
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.e2e.a11y import horizontal_overflow, small_screenshot
from tests.e2e.test_console import console_login
from tests.handoff.console_helpers import PASSWORDS
from tests.handoff.report_seed import seed_week

pytestmark = pytest.mark.browser

# Each table.grid: does it fit, or else does it scroll itself with a sticky first column and a tab stop;
# and the narrowest cell that holds 6 or more characters.
TABLES_JS = """() => Array.from(document.querySelectorAll('table')).filter(t => t.getClientRects().length).map(t => {
  const box = t.parentElement.classList.contains('scroll') ? t.parentElement : t;
  const first = t.querySelector('tbody tr > :first-child, tr > :first-child');
  const cells = Array.from(t.querySelectorAll('td, th')).filter(c => c.textContent.trim().length >= 6
    && c.getClientRects().length);
  return {
    cls: t.className, wide: box.scrollWidth > box.clientWidth + 1,
    sticky: first ? getComputedStyle(first).position : '',
    focusable: box.tabIndex >= 0 || !!t.querySelector('a, button, input, select'),
    inView: box.getBoundingClientRect().right <= innerWidth + 1,
    narrowest: Math.min(...cells.map(c => c.getBoundingClientRect().width), 9999),
    cards: getComputedStyle(t.querySelector('tbody tr') || t).display === 'block',
  };
})"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def check_page(page: Page, url: str) -> list[dict[str, Any]]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert page.locator("link[rel~='icon']").count() >= 1, url
    assert horizontal_overflow(page) <= 0, f"{url} scrolls sideways"
    tables: list[dict[str, Any]] = page.evaluate(TABLES_JS)
    for t in tables:
        assert t["inView"], (url, t)
        if t["wide"]:
            assert t["sticky"] == "sticky" and t["focusable"], (url, t)
        assert t["narrowest"] >= 56, (url, t)  # no column squeezed to a character or two
    return tables


def test_console_pages_at_390px(
    phone: Page,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(demo_url))
    seeded = seed_week(app)
    base = live_server(app)
    console_login(phone, base, "sue", PASSWORDS["sue"])
    expect(phone.get_by_role("heading", level=1).first).to_be_visible()
    queue = check_page(phone, f"{base}/console/queue")
    assert any(t["cards"] for t in queue if "queue" in t["cls"])
    small_screenshot(phone, "console-queue-390", tmp_path)
    for path in (
        f"/console/tickets/{seeded.ticket_no}",
        "/console/faqs",
        "/console/reports",
        "/console/weekly",
        "/console/dashboard",
        "/console/account",
    ):
        check_page(phone, base + path)
    report = check_page(phone, f"{base}/console/weekly/{seeded.week}")
    assert any(t["wide"] for t in report), "the topics table scrolls in its own box"
    small_screenshot(phone, "console-weekly-390", tmp_path)

    phone.context.clear_cookies()
    console_login(phone, base, "admin", PASSWORDS["admin"])
    for path in (
        "/console/admin/users",
        "/console/admin/departments",
        "/console/admin/templates",
        "/console/audit",
    ):
        check_page(phone, base + path)


def test_weekly_report_html_at_390px(phone: Page, demo_url: str, tmp_path: Path) -> None:  # noqa: F811
    app = create_app(make_settings(demo_url))
    seeded = seed_week(app)
    result = generate(app.state.sessions, app.state.kb, out_dir=tmp_path / "reports", week=seeded.week)
    for written in result.files:
        tables = check_page(phone, written.html.resolve().as_uri())
        assert tables
    overview = next(f for f in result.files if f.unit is None)
    phone.goto(overview.html.resolve().as_uri())
    topics = phone.locator("table").filter(has_text="代表性问题")
    expect(topics).to_contain_text("新生儿医保")
    small_screenshot(phone, "report-weekly-390", tmp_path, full_page=True)
