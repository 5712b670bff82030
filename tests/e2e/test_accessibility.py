"""Issue 17 acceptance (WCAG 2.1 AA, 关怀模式, phone-first) in headless Chromium on the real app.

Every public page of PUBLIC_PAGES (append new public routes there) and the chat widget, closed and
open, are checked by axe-core in both modes (normal and 关怀模式) at 390 px and 1366 px: no serious or
critical violation, and in care mode no text below 7:1 contrast. Beyond axe: every font size follows
the browser's font setting (rem), care mode shows no text below 18 px, buttons at least 48 px high
and one column; the skip link reaches the widget's launcher first; every focus stop draws a visible
focus ring; the care-mode toggle is remembered across reloads and pages (localStorage) and set by
?care=1 / ?care=0; the launcher keeps its label on a phone; every page links a favicon that loads
and the demo page logs no browser error. Screenshots of each page in both modes go to
docs/screenshots/ (when missing, or with POLICYBOT_SCREENSHOTS=1).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, make_settings  # noqa: F401  (fixtures)
from tests.e2e.a11y import (
    axe_violations,
    focus_is_visible,
    focused,
    horizontal_overflow,
    small_screenshot,
    text_sizes,
)
from tests.e2e.conftest import run_live_server

pytestmark = pytest.mark.browser

# The public pages ({no}: a published ticket); append new public pages here. Those of PENDING are
# being added in parallel: while one is not a route of the app its tests are skipped, with the reason.
PUBLIC_PAGES = ["/", "/board", "/board/{no}", "/board/stats", "/faq", "/policies"]
PENDING: set[str] = set()
MODES = ["normal", "care"]
WIDTHS = [390, 1366]
HEIGHT = {390: 844, 1366: 900}
QUESTION = "灵活就业人员社保补贴怎么申请？"
REPLY = "请登录“一网通办”提交申请，区人力资源和社会保障局在10个工作日内审核。"


@dataclass(frozen=True)
class Site:
    app: FastAPI
    base: str
    no: str
    code: str


@pytest.fixture(scope="module")
def site(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:  # noqa: F811
    db = tmp_path_factory.mktemp("a11y") / "policybot.db"
    shutil.copy(demo_template, db)
    app = create_app(make_settings(f"sqlite:///{db}"))
    tickets = app.state.tickets
    t = tickets.open(question=QUESTION, channel="web", user_ref="citizen-a11y")
    tickets.reply(tickets.assign(t.no, staff="alice").no, staff="alice", text=REPLY)
    t = tickets.publish(t.no, by="alice")
    with run_live_server(app) as base:
        yield Site(app, base, t.no, tickets.get(t.no).verify_code)


def route_paths(routes: Any) -> Iterator[str]:
    """Every route path of the app, through included routers."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from route_paths(inner.routes)
        elif hasattr(r, "path"):
            yield r.path


def missing(site: Site, route: str) -> bool:
    """A PENDING page this build does not serve yet."""
    known = set(route_paths(site.app.routes))
    assert "/board/{no}" in known, "route_paths does not see the app's routes"
    return route in PENDING and route not in known


@pytest.fixture
def sized(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    width = request.param if hasattr(request, "param") else 1366
    context = browser.new_context(viewport={"width": width, "height": HEIGHT[width]}, locale="zh-CN")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def open_page(page: Page, site: Site, route: str, mode: str | None = None) -> None:
    if missing(site, route):
        pytest.skip(f"{route} is not a route of this build yet")
    url = site.base + route.replace("{no}", site.no)
    if mode is not None:
        url += "?care=" + ("1" if mode == "care" else "0")
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if route == "/":
        expect(launcher(page)).to_be_visible()
    if mode is not None:
        care_on = page.evaluate("() => document.documentElement.classList.contains('pb-care')")
        assert care_on == (mode == "care")


def launcher(page: Page) -> Any:
    return page.get_by_role("button", name=re.compile("^打开政策咨询"))


def open_widget(page: Page) -> None:
    launcher(page).click()
    dialog = page.get_by_role("dialog", name="政策咨询")
    expect(dialog).to_be_visible()
    expect(page.locator(".pbw-msg-bot").first).to_contain_text("您好")
    box = page.get_by_role("textbox", name="输入您的问题")
    box.fill("依申请公开多长时间答复")
    box.press("Enter")
    expect(page.locator(".pbw-rating").last).to_be_visible()  # an answer with sources and rating


def slug(route: str) -> str:
    return route.strip("/").replace("{no}", "ticket").replace("/", "-") or "demo"


# --- axe on every page, both modes, phone and desktop ------------------------------------------


@pytest.mark.parametrize("sized", WIDTHS, indirect=True, ids=lambda w: f"{w}px")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", PUBLIC_PAGES)
def test_axe_public_page(sized: Page, site: Site, route: str, mode: str, tmp_path: Path) -> None:
    open_page(sized, site, route, mode)
    assert axe_violations(sized, care=mode == "care") == []
    assert horizontal_overflow(sized) <= 0, "the page scrolls sideways"
    small_screenshot(sized, f"{slug(route)}-{mode}-{sized.viewport_size['width']}", tmp_path)  # type: ignore[index]


@pytest.mark.parametrize("sized", WIDTHS, indirect=True, ids=lambda w: f"{w}px")
@pytest.mark.parametrize("mode", MODES)
def test_axe_widget_open(sized: Page, site: Site, mode: str, tmp_path: Path) -> None:
    open_page(sized, site, "/", mode)
    open_widget(sized)
    if mode == "care":
        expect(sized.locator(".pbw-root")).to_have_class(re.compile(r"\bpbw-care\b"))
    assert axe_violations(sized, care=mode == "care") == []
    small_screenshot(sized, f"widget-{mode}-{sized.viewport_size['width']}", tmp_path)  # type: ignore[index]


def test_axe_own_ticket_view(sized: Page, site: Site) -> None:
    """The citizen's own view (after the 6-digit code) with the rating form, in both modes."""
    for mode in MODES:
        open_page(sized, site, "/board/{no}", mode)
        sized.get_by_label("查询码").fill(site.code)
        sized.get_by_role("button", name="查看办理情况").click()
        expect(sized.get_by_role("heading", name="我的留言办理情况")).to_be_visible()
        assert axe_violations(sized, care=mode == "care") == [], mode


# --- fonts, care mode ----------------------------------------------------------------------------


def set_default_font_size(page: Page, px: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Page.setFontSizes", {"fontSizes": {"standard": px, "fixed": px}})


@pytest.mark.parametrize("route", [*PUBLIC_PAGES, "widget"])
def test_text_follows_the_browser_font_setting(sized: Page, site: Site, route: str) -> None:
    open_page(sized, site, "/" if route == "widget" else route, "normal")
    if route == "widget":
        open_widget(sized)
    before = text_sizes(sized)
    assert before
    set_default_font_size(sized, 24)  # the browser's setting, 16 px by default
    sized.wait_for_timeout(100)
    after = text_sizes(sized)
    assert [n for n, _, _ in after] == [n for n, _, _ in before]
    fixed = [(b[0], b[2], b[1], a[1]) for b, a in zip(before, after, strict=True) if a[1] < b[1] * 1.4]
    assert fixed == [], "these texts ignore the browser's font size (px instead of rem)"


CARE_CHECKS_JS = """() => {
  const all = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) { all.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  const shown = el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden';
  const small = all.filter(el => el.matches('button, input:not([type=hidden]):not([type=checkbox]), select, a.button')
    && shown(el)).map(el => [el.textContent.trim().slice(0, 20) || el.getAttribute('aria-label'),
      el.getBoundingClientRect().height]).filter(([, h]) => h < 48);
  const blocks = all.filter(el => el.matches('main article, main aside, main section, main .card, .layout > *')
    && shown(el)).map(el => [el, el.getBoundingClientRect()]);
  const side = [];
  for (const [a, ra] of blocks) for (const [b, rb] of blocks) {
    if (a === b || a.contains(b) || b.contains(a)) continue;
    if (ra.top < rb.bottom - 1 && rb.top < ra.bottom - 1 && ra.left < rb.left) side.push([a.tagName + '.' + a.className, b.tagName + '.' + b.className]);
  }
  const decor = all.filter(el => el.matches('.emblem, .pbw-avatar') && shown(el)).length;
  return {small, side, decor};
}"""


@pytest.mark.parametrize("sized", WIDTHS, indirect=True, ids=lambda w: f"{w}px")
@pytest.mark.parametrize("route", [*PUBLIC_PAGES, "widget"])
def test_care_mode_large_text_big_buttons_one_column(sized: Page, site: Site, route: str) -> None:
    open_page(sized, site, "/" if route == "widget" else route, "care")
    if route == "widget":
        open_widget(sized)
    tiny = [(n, s, t) for n, s, t in text_sizes(sized) if s < 18]
    assert tiny == [], "text below 18 px in 关怀模式"
    checks = sized.evaluate(CARE_CHECKS_JS)
    assert checks["small"] == [], "controls below 48 px in 关怀模式"
    assert checks["side"] == [], "more than one column in 关怀模式"
    assert checks["decor"] == 0, "decorative elements shown in 关怀模式"


def test_care_toggle_remembered_shared_and_set_by_url(sized: Page, site: Site) -> None:
    page = sized
    open_page(page, site, "/board")
    toggle = page.get_by_role("button", name="关怀模式")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    normal = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)") >= max(
        18, normal * 1.15
    )

    page.reload()
    expect(page.get_by_role("button", name="关怀模式")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("() => document.documentElement.classList.contains('pb-care')")

    # the demo page and its widget share the setting; the widget's own toggle switches both
    page.goto(site.base + "/")
    expect(page.locator(".pbw-root")).to_have_class(re.compile(r"\bpbw-care\b"))
    launcher(page).click()
    in_widget = page.get_by_role("dialog", name="政策咨询").get_by_role("button", name="关怀模式")
    expect(in_widget).to_have_attribute("aria-pressed", "true")
    in_widget.click()
    expect(in_widget).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".pbw-root")).not_to_have_class(re.compile(r"\bpbw-care\b"))
    assert not page.evaluate("() => document.documentElement.classList.contains('pb-care')")
    page.goto(site.base + "/board")
    expect(page.get_by_role("button", name="关怀模式")).to_have_attribute("aria-pressed", "false")

    # a link from a 长者 portal: ?care=1 switches it on (and is remembered), ?care=0 off
    page.goto(site.base + "/board?page=1&care=1")
    expect(page.get_by_role("button", name="关怀模式")).to_have_attribute("aria-pressed", "true")
    assert page.url == site.base + "/board?page=1", "the parameter is dropped from the address"
    page.goto(site.base + "/board")
    expect(page.get_by_role("button", name="关怀模式")).to_have_attribute("aria-pressed", "true")
    page.goto(site.base + "/?care=0")
    expect(page.locator(".pbw-root")).not_to_have_class(re.compile(r"\bpbw-care\b"))
    page.goto(site.base + "/board")
    expect(page.get_by_role("button", name="关怀模式")).to_have_attribute("aria-pressed", "false")


def widget_sizes(page: Page) -> dict[str, float]:
    return dict(
        (n, s) for n, s, _ in text_sizes(page) if n.split(".")[1:2] and n.split(".")[1].startswith("pbw-")
    )


def test_widget_on_a_foreign_page_keeps_its_sizes_and_loads_care_mode(
    sized: Page, fake_api: tuple[Any, str]
) -> None:
    """A host page that sets `* { font-size: 40px }` (so rem = 40 px) neither grows nor shrinks the
    widget; ?care=1 on such a page (which has no care.js of its own) still switches 关怀模式."""
    _, base = fake_api
    sized.goto(base + "/")  # the demo page: rem = the browser's 16 px
    sized.get_by_role("button", name=re.compile("^打开政策咨询")).click()
    expect(sized.locator(".pbw-footnote")).to_be_visible()
    ours = widget_sizes(sized)
    sized.goto(base + "/host?open=true")
    expect(sized.locator(".pbw-footnote")).to_be_visible()
    theirs = widget_sizes(sized)
    common = {"p.pbw-footnote", "span.pbw-counter", "h2.pbw-title", "textarea.pbw-input"} | (
        ours.keys() & theirs.keys()
    )
    assert {k: theirs.get(k) for k in common} == {k: ours.get(k) for k in common}
    assert ours["p.pbw-footnote"] == 13

    sized.goto(base + "/host?open=true&care=1")
    expect(sized.locator(".pbw-root")).to_have_class(re.compile(r"\bpbw-care\b"))
    care_btn = sized.get_by_role("dialog").get_by_role("button", name="关怀模式")
    expect(care_btn).to_have_attribute("aria-pressed", "true")
    sizes = widget_sizes(sized)
    assert sizes and min(sizes.values()) >= 18 and max(sizes.values()) < 30, sizes
    care_btn.click()
    expect(sized.locator(".pbw-root")).not_to_have_class(re.compile(r"\bpbw-care\b"))
    sized.reload()
    expect(sized.get_by_role("dialog").get_by_role("button", name="关怀模式")).to_have_attribute(
        "aria-pressed", "false"
    )


# --- keyboard ------------------------------------------------------------------------------------


def test_skip_link_reaches_the_launcher_first(sized: Page, site: Site) -> None:
    open_page(sized, site, "/")
    sized.keyboard.press("Tab")
    first = focused(sized)
    assert first and "跳到政策咨询" in first["name"] and first["inViewport"], first
    assert focus_is_visible(first)
    sized.keyboard.press("Enter")
    assert (focused(sized) or {}).get("name", "").startswith("button 打开政策咨询")
    sized.keyboard.press("Enter")
    expect(sized.get_by_role("dialog", name="政策咨询")).to_be_visible()
    expect(sized.get_by_role("textbox", name="输入您的问题")).to_be_focused()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", [*PUBLIC_PAGES, "widget"])
def test_every_focus_stop_is_visible(sized: Page, site: Site, route: str, mode: str) -> None:
    open_page(sized, site, "/" if route == "widget" else route, mode)
    if route == "widget":
        open_widget(sized)
        sized.get_by_role("textbox", name="输入您的问题").focus()
    seen: list[str] = []
    hidden: list[str] = []
    for _ in range(80):
        sized.keyboard.press("Tab")
        info = focused(sized)
        if info is None:
            continue
        if info["name"] in seen[:1]:
            break  # back at the start
        seen.append(info["name"])
        if not (focus_is_visible(info) and info["inViewport"]):
            hidden.append(info["name"])
    assert len(seen) >= 3
    assert hidden == [], "focus not visible on these"


# --- phone, favicon, console errors --------------------------------------------------------------


@pytest.mark.parametrize("sized", [390], indirect=True, ids=lambda w: f"{w}px")
def test_phone_launcher_shows_its_label(sized: Page, site: Site) -> None:
    open_page(sized, site, "/")
    label = sized.locator(".pbw-launcher-label")
    expect(label).to_be_visible()
    expect(label).to_have_text("政策咨询")
    box = launcher(sized).bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 48


@pytest.mark.parametrize("route", PUBLIC_PAGES)
def test_favicon_linked_and_no_browser_errors(sized: Page, site: Site, route: str) -> None:
    errors: list[str] = []
    sized.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sized.on("pageerror", lambda e: errors.append(str(e)))
    sized.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    open_page(sized, site, route)
    icons = sized.locator("link[rel~='icon']")
    assert icons.count() >= 1
    for href in icons.evaluate_all("links => links.map(l => l.href)"):
        response = sized.request.get(href)
        assert response.ok and response.headers["content-type"].startswith("image/"), href
    favicon = sized.request.get(site.base + "/favicon.ico")
    assert favicon.ok and favicon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert errors == []
