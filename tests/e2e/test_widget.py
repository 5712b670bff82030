"""Browser tests of the website chat widget (bot/static/widget.js) against the fake web API.

They drive Debian's Chromium through Playwright: asking and reading answers with sources, rating,
clarify suggestions, the leave-a-message form (validation, consent, server errors, ticket number),
staff replies arriving by polling (with an unread badge while closed), ticket lookup, session expiry,
network errors with retry, XSS payloads rendered as text, keyboard and screen-reader basics, data
attributes, isolation from hostile host CSS and the full-screen panel on a phone. Screenshots go to
docs/widget-desktop.png and docs/widget-mobile.png when missing or with POLICYBOT_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRIMARY_RGB = "rgb(31, 95, 191)"  # #1f5fbf


def screenshot_path(name: str, tmp_path: Path) -> Path:
    target = DOCS / name
    if os.environ.get("POLICYBOT_SCREENSHOTS") == "1" or not target.exists():
        DOCS.mkdir(exist_ok=True)
        return target
    return tmp_path / name


def open_widget(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name=re.compile("^打开政策咨询")).click()
    expect(page.get_by_role("dialog", name="政策咨询")).to_be_visible()
    expect(page.locator(".pbw-msg-bot").first).to_contain_text("您好")


def ask(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="输入您的问题")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".pbw-msg-user").last).to_have_text(re.compile(re.escape(text)))


def last_bot(page: Page) -> Any:
    return page.locator(".pbw-msg-bot:not(.pbw-typing)").last


def leave_message(page: Page, question: str, name: str, phone: str) -> str:
    """Fill the leave-a-message form the bot offered (with consent) and return the ticket number."""
    form = page.get_by_role("form", name="留言给工作人员")
    expect(form).to_be_visible()
    form.get_by_label("留言内容（必填）").fill(question)
    form.get_by_label("姓名（选填）").fill(name)
    form.get_by_label("联系电话（选填）").fill(phone)
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="提交留言").click()
    card = page.locator(".pbw-ticket").first
    expect(card).to_contain_text(re.compile(r"LY\d{8}-\d{4}"))
    found = re.search(r"LY\d{8}-\d{4}", card.inner_text())
    assert found
    return found.group(0)


def test_answer_with_source_link_and_rating(page: Page, fake_api: tuple[Any, str], tmp_path: Path) -> None:
    app, base = fake_api
    open_widget(page, base + "/")
    send = page.get_by_role("button", name="发送")
    expect(send).to_be_disabled()
    expect(page.get_by_role("textbox", name="输入您的问题")).to_be_focused()

    ask(page, "依申请公开多久答复")
    answer = last_bot(page)
    expect(answer).to_contain_text("20个工作日内予以答复")
    source = answer.locator(".pbw-source")
    expect(source).to_contain_text("《中华人民共和国政府信息公开条例》")
    expect(source).to_contain_text("国务院令第711号 第三十三条")
    doc_link = source.get_by_role("link", name="《中华人民共和国政府信息公开条例》")
    expect(doc_link).to_have_attribute("href", re.compile(r"^https://www\.gov\.cn/"))
    expect(doc_link).to_have_attribute("target", "_blank")
    expect(doc_link).to_have_attribute("rel", re.compile("noopener"))
    # a URL inside the answer text becomes a link, without the trailing Chinese full stop
    expect(answer.locator(".pbw-text a")).to_have_attribute("href", "https://www.gov.cn/zhengce/")
    expect(send).to_be_disabled()  # input cleared after sending

    answer.get_by_role("button", name="有用").click()
    expect(answer.locator(".pbw-rating-status")).to_have_text("感谢您的评价")
    expect(answer.get_by_role("button", name="有用")).to_be_disabled()
    expect(answer.get_by_role("button", name="没用")).to_be_disabled()
    ratings = app.state.fake.ratings
    assert len(ratings) == 1 and ratings[0]["rating"] == "useful"
    assert ratings[0]["ref"] in app.state.fake.refs

    ask(page, "社保怎么交")  # leaves suggestions on screen for the screenshot
    expect(last_bot(page).locator(".pbw-chip")).to_have_count(3)
    page.screenshot(path=str(screenshot_path("widget-desktop.png", tmp_path)))


def test_clarify_suggestion_click_sends_its_text(page: Page, fake_api: tuple[Any, str]) -> None:
    app, base = fake_api
    open_widget(page, base + "/")
    ask(page, "社保")
    chips = last_bot(page).get_by_role("group", name="您可能想问").get_by_role("button")
    expect(chips).to_have_count(3)
    chips.nth(1).click()
    expect(page.locator(".pbw-msg-user").last).to_have_text(re.compile("社保卡丢失怎么补办？"))
    expect(last_bot(page)).to_contain_text("关于“社保卡丢失怎么补办？”")
    assert [c["text"] for c in app.state.fake.chats] == ["社保", "社保卡丢失怎么补办？"]


def test_handoff_form_ticket_staff_reply_badge_and_lookup(page: Page, fake_api: tuple[Any, str]) -> None:
    app, base = fake_api
    open_widget(page, base + "/?poll_ms=500")
    ask(page, "小区门口的路灯坏了找哪个部门")
    form = page.get_by_role("form", name="留言给工作人员")
    expect(form).to_be_visible()
    question = form.get_by_label("留言内容（必填）")
    expect(question).to_have_value("小区门口的路灯坏了找哪个部门")
    expect(page.locator(".pbw-chip").filter(has_text="留言")).to_have_count(0)  # the form replaces it
    submit = form.get_by_role("button", name="提交留言")

    # client-side validation, in Chinese, before anything is sent
    form.get_by_label("联系电话（选填）").fill("12345")
    submit.click()
    expect(form).to_contain_text("请输入正确的手机号码或固定电话")
    form.get_by_label("联系电话（选填）").fill("138 0013 8000")
    form.get_by_label("姓名（选填）").fill("张三")
    submit.click()
    expect(form).to_contain_text("填写姓名或联系电话时，请先阅读并勾选同意")
    expect(form.get_by_role("checkbox")).to_be_focused()
    assert app.state.fake.tickets == {}

    # a server-side rejection is shown in the form
    form.get_by_role("checkbox").check()
    question.fill("违禁内容测试，路灯坏了")
    submit.click()
    expect(form.get_by_role("alert").filter(has_text="留言内容含有不当信息")).to_be_visible()
    assert app.state.fake.tickets == {}

    question.fill("小区门口的路灯坏了找哪个部门")
    submit.click()
    card = page.locator(".pbw-ticket").first
    expect(card).to_contain_text("LY20261123-0001")
    expect(card).to_contain_text("2026年12月21日")  # the one date format citizens read
    expect(card).to_contain_text("834201")
    ticket = app.state.fake.tickets["LY20261123-0001"]
    assert ticket["consent"] is True and ticket["phone"] == "13800138000" and ticket["name"] == "张三"

    # the staff reply arrives through polling in the same conversation
    expect(page.locator(".pbw-kind-text").filter(has_text="已答复")).to_contain_text("政务服务中心3号窗口")

    # while closed, a new push shows an unread badge
    page.keyboard.press("Escape")
    session = page.evaluate("window.PolicyBotWidget.session()")
    app.state.fake.pushes[session].append(
        {
            "kind": "status",
            "text": "您的留言已办结。",
            "ticket_no": "LY20261123-0001",
            "suggestions": [],
            "sources": [],
        }
    )
    launcher = page.get_by_role("button", name=re.compile("^打开政策咨询（1条新消息）"))
    expect(launcher).to_be_visible()
    expect(page.locator(".pbw-badge")).to_have_text("1")
    launcher.click()
    expect(page.locator(".pbw-badge")).to_be_hidden()
    expect(page.locator(".pbw-kind-status")).to_contain_text("您的留言已办结")

    # ticket lookup, prefilled with the ticket submitted on this device
    page.get_by_role("button", name="查询留言").click()
    lookup = page.get_by_role("textbox", name="留言编号")
    expect(lookup).to_be_focused()
    expect(lookup).to_have_value("LY20261123-0001")
    lookup.press("Enter")
    expect(page.locator(".pbw-ticket").last).to_contain_text("已答复")
    page.get_by_role("button", name="查询留言").click()
    lookup.fill("LY20990101-0009")
    lookup.press("Enter")
    expect(page.locator(".pbw-lookup")).to_contain_text("未找到该留言")


def handoff_form(page: Page, url: str, question: str) -> Any:
    """Ask a question the (fake) API cannot answer: the message form it offers."""
    open_widget(page, url)
    ask(page, question)
    return page.get_by_role("form", name="留言给工作人员")


def test_consent_not_required_without_contact_details(page: Page, fake_api: tuple[Any, str]) -> None:
    app, base = fake_api
    form = handoff_form(page, base + "/", "路灯坏了怎么报修")
    form.get_by_role("button", name="提交留言").click()
    expect(page.locator(".pbw-ticket-no").first).to_have_text("LY20261123-0001")
    ticket = app.state.fake.tickets["LY20261123-0001"]
    assert ticket["name"] is None and ticket["phone"] is None and ticket["consent"] is False


def test_pasted_phone_with_zero_width_characters_is_accepted(page: Page, fake_api: tuple[Any, str]) -> None:
    """A number pasted from a chat app often carries zero-width spaces: the form takes it, and sends
    the digits only (the server strips the same characters)."""
    app, base = fake_api
    form = handoff_form(page, base + "/", "路灯坏了怎么报修")
    form.get_by_label("联系电话（选填）").fill("138\u200b1234\u200b5678\ufeff")
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="提交留言").click()
    expect(page.locator(".pbw-ticket-no").first).to_have_text("LY20261123-0001")
    assert app.state.fake.tickets["LY20261123-0001"]["phone"] == "13812345678"


def test_resubmitting_after_a_lost_response_gives_the_same_ticket(
    page: Page, fake_api: tuple[Any, str]
) -> None:
    app, base = fake_api
    form = handoff_form(page, base + "/", "路灯坏了怎么报修")

    def lose_response(route: Any) -> None:  # the server creates the ticket, the answer never arrives
        route.fetch()
        route.abort()

    page.route("**/api/v1/tickets", lose_response)
    form.get_by_role("button", name="提交留言").click()
    expect(form.get_by_role("alert")).to_contain_text("网络")
    expect(form.get_by_label("留言内容（必填）")).to_have_value("路灯坏了怎么报修")  # nothing typed is lost
    assert len(app.state.fake.tickets) == 1
    page.unroute("**/api/v1/tickets")
    form.get_by_role("button", name="提交留言").click()
    expect(page.locator(".pbw-ticket-no").first).to_have_text("LY20261123-0001")
    assert list(app.state.fake.tickets) == ["LY20261123-0001"]  # the retry carried the same key
    assert app.state.fake.tickets["LY20261123-0001"]["idempotency_key"].startswith("w-")


def test_message_received_during_maintenance_then_numbered(page: Page, fake_api: tuple[Any, str]) -> None:
    app, base = fake_api
    form = handoff_form(page, base + "/?poll_ms=500", "系统维护期间路灯坏了找谁")
    form.get_by_role("button", name="提交留言").click()
    card = page.locator(".pbw-ticket").first
    expect(card.locator(".pbw-ticket-head")).to_have_text("留言已收到")
    expect(card).to_contain_text("系统恢复后，留言编号将显示在本对话中")
    expect(card.locator(".pbw-ticket-no")).to_have_count(0)
    assert len(app.state.fake.queued) == 1 and app.state.fake.tickets == {}
    # the database is back: the number is pushed into the same conversation
    session = page.evaluate("window.PolicyBotWidget.session()")
    app.state.fake.pushes[session].append(
        {
            "kind": "ticket_opened",
            "ticket_no": "LY20261123-0009",
            "suggestions": [],
            "sources": [],
            "text": "您在系统维护期间提交的留言已登记。留言已提交，编号 LY20261123-0009。",
        }
    )
    expect(page.locator(".pbw-msg").filter(has_text="LY20261123-0009")).to_be_visible()


def test_html_in_questions_and_answers_is_rendered_as_text(page: Page, fake_api: tuple[Any, str]) -> None:
    _, base = fake_api
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    payload = '<img src=x onerror="window.__pbwXss=1;alert(1)"><script>window.__pbwXss=2</script><b>粗</b>'
    open_widget(page, base + "/")
    ask(page, payload)
    answer = last_bot(page)
    expect(answer.locator(".pbw-text")).to_have_text("您的问题是：" + payload)
    expect(answer.locator(".pbw-source")).to_contain_text("《" + payload + "》")
    widget = page.locator("#policybot-widget")
    expect(widget.locator("img")).to_have_count(0)
    expect(widget.locator("script")).to_have_count(0)
    expect(widget.locator(".pbw-messages b")).to_have_count(0)
    expect(answer.locator(".pbw-source a")).to_have_count(0)  # javascript: URL is never a link
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pbwXss") is None
    assert dialogs == []


def test_keyboard_focus_escape_and_host_css_isolation(page: Page, fake_api: tuple[Any, str]) -> None:
    _, base = fake_api
    page.goto(base + "/host")
    launcher = page.get_by_role("button", name="打开政策咨询")
    expect(launcher).to_be_visible()  # the host's `button {display:none}` does not reach it
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == PRIMARY_RGB
    assert launcher.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
    for _ in range(5):
        page.keyboard.press("Tab")
        if launcher.evaluate("b => b.getRootNode().activeElement === b"):
            break
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="政策咨询")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    box = page.get_by_role("textbox", name="输入您的问题")
    expect(box).to_be_focused()
    expect(page.locator(".pbw-messages")).to_have_attribute("aria-live", "polite")

    # Shift+Enter is a newline, Enter sends; the counter follows; 500 characters at most
    box.type("第一行")
    box.press("Shift+Enter")
    box.type("第二行")
    expect(box).to_have_value("第一行\n第二行")
    expect(page.locator(".pbw-counter")).to_have_text("7/500")
    expect(page.locator(".pbw-msg-user")).to_have_count(0)
    page.keyboard.insert_text("长" * 600)
    assert len(box.input_value()) == 500
    expect(page.locator(".pbw-counter")).to_have_text("500/500")
    box.fill("")

    # Tab stays inside the modal panel
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate(
            "() => { const r = document.getElementById('policybot-widget').shadowRoot;"
            " return !!r.activeElement && r.querySelector('.pbw-panel').contains(r.activeElement); }"
        )
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_be_focused()


def test_data_attributes_title_colour_position_welcome_open(page: Page, fake_api: tuple[Any, str]) -> None:
    _, base = fake_api
    page.add_init_script("window.__pbwBefore = Object.getOwnPropertyNames(window)")
    page.goto(base + "/host?title=办事咨询&color=%23b22222&position=left&welcome=欢迎来到示范市&open=true")
    dialog = page.get_by_role("dialog", name="办事咨询")
    expect(dialog).to_be_visible()
    expect(page.locator(".pbw-msg-bot").first).to_contain_text("欢迎来到示范市")
    expect(page.locator(".pbw-chip")).to_have_count(2)  # the server's welcome suggestions stay
    launcher = page.get_by_role("button", name="打开办事咨询")
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(178, 34, 34)"
    box = dialog.bounding_box()
    assert box is not None and box["x"] < 40
    added = page.evaluate(
        "Object.getOwnPropertyNames(window).filter(k => !window.__pbwBefore.includes(k) && k !== '__pbwBefore')"
    )
    assert sorted(added) == ["PolicyBotCare", "PolicyBotWidget"]  # the second from care.js (关怀模式)


def test_expired_session_is_replaced_and_conversation_survives_reload(
    page: Page, fake_api: tuple[Any, str]
) -> None:
    app, base = fake_api
    open_widget(page, base + "/")
    ask(page, "依申请公开多久答复")
    expect(last_bot(page)).to_contain_text("20个工作日")
    first = page.evaluate("window.PolicyBotWidget.session()")
    httpx.post(base + "/_test/expire")
    ask(page, "信息公开怎么申请")
    expect(page.locator(".pbw-msg-bot .pbw-text").filter(has_text="20个工作日")).to_have_count(2)
    expect(page.locator(".pbw-error")).to_have_count(0)
    second = page.evaluate("window.PolicyBotWidget.session()")
    assert second and second != first and second in app.state.fake.sessions
    stored = page.evaluate(f"localStorage.getItem('policybot:{base}:session')")
    assert stored == second

    # next page view: the conversation is restored, and a staff reply pushed meanwhile shows once
    app.state.fake.pushes[second].append(
        {"kind": "text", "text": "工作人员答复：已转交区政务公开办。", "ticket_no": "LY20261123-0042"}
    )
    page.goto(base + "/?poll_ms=300")
    expect(page.locator(".pbw-badge")).to_have_text("1")
    page.get_by_role("button", name=re.compile("^打开政策咨询（1条新消息）")).click()
    expect(page.locator(".pbw-kind-text").filter(has_text="已转交")).to_have_count(1)
    expect(page.locator(".pbw-kind-text").filter(has_text="已转交")).to_contain_text("留言 LY20261123-0042")
    expect(page.locator(".pbw-msg-user")).to_have_count(2)
    expect(page.locator(".pbw-msg-bot .pbw-source")).to_have_count(2)
    expect(page.locator(".pbw-msg-bot").filter(has_text="您好")).to_have_count(1)
    assert page.evaluate("window.PolicyBotWidget.session()") == second
    page.wait_for_timeout(700)  # further polls do not repeat it
    expect(page.locator(".pbw-kind-text").filter(has_text="已转交")).to_have_count(1)


def test_cross_origin_api_from_data_api(page: Page, live_server: Any) -> None:
    from tests.e2e.fake_api import create_fake_app

    site, api = create_fake_app(), create_fake_app()
    site_url, api_url = live_server(site), live_server(api)
    api_url = api_url.replace("127.0.0.1", "localhost")  # another origin for the browser
    page.goto(site_url + "/?api_base=" + api_url)
    page.get_by_role("button", name=re.compile("^打开政策咨询")).click()
    ask(page, "依申请公开多久答复")
    expect(last_bot(page)).to_contain_text("20个工作日")
    assert [c["text"] for c in api.state.fake.chats] == ["依申请公开多久答复"]
    assert site.state.fake.chats == []
    assert page.evaluate(f"localStorage.getItem('policybot:{api_url}:session')") in api.state.fake.sessions


def test_network_error_shows_retry(page: Page, fake_api: tuple[Any, str]) -> None:
    _, base = fake_api
    open_widget(page, base + "/")
    page.route("**/api/v1/chat", lambda route: route.abort())
    ask(page, "依申请公开多久答复")
    error = page.locator(".pbw-error")
    expect(error).to_contain_text("网络连接失败")
    expect(page.locator(".pbw-typing")).to_have_count(0)
    page.unroute("**/api/v1/chat")
    error.get_by_role("button", name="重试").click()
    expect(last_bot(page)).to_contain_text("20个工作日")
    expect(page.locator(".pbw-error")).to_have_count(0)


def test_mobile_panel_fills_the_screen(browser: Any, fake_api: tuple[Any, str], tmp_path: Path) -> None:
    _, base = fake_api
    context = browser.new_context(
        viewport={"width": 375, "height": 667},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    try:
        page = context.new_page()
        page.goto(base + "/")
        launcher = page.get_by_role("button", name=re.compile("^打开政策咨询"))
        lbox = launcher.bounding_box()
        assert lbox is not None and lbox["width"] >= 44 and lbox["height"] >= 44
        launcher.tap()
        dialog = page.get_by_role("dialog", name="政策咨询")
        expect(dialog).to_be_visible()
        box = dialog.bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
        ask(page, "依申请公开多久答复")
        expect(last_bot(page)).to_contain_text("20个工作日")
        for name in ("发送", "关闭对话窗口"):
            b = page.get_by_role("button", name=name).bounding_box()
            assert b is not None and b["height"] >= 44 and b["width"] >= 44
        page.screenshot(path=str(screenshot_path("widget-mobile.png", tmp_path)))
        page.get_by_role("button", name="关闭对话窗口").tap()
        expect(dialog).to_be_hidden()
    finally:
        context.close()


def test_texts_come_from_the_server_and_an_unreachable_server_is_said(
    page: Page, fake_api: tuple[Any, str]
) -> None:
    """The labels are the server's (bot/texts.py); with the server unreachable and no copy kept, the
    launcher still shows and says the one built-in line; once reachable, the widget opens as usual.
    A later page keeps working from the copy the widget remembered."""
    api, base = fake_api
    page.route("**/api/v1/widget/texts", lambda route: route.abort())
    page.goto(base + "/")
    launcher = page.locator("[data-pbw-offline]").get_by_role("button", name="政策咨询")
    launcher.click()
    expect(page.get_by_role("alert")).to_have_text("网络连接失败，请检查网络后重试。")
    page.unroute("**/api/v1/widget/texts")
    launcher.click()
    expect(page.get_by_role("dialog", name="政策咨询")).to_be_visible()
    expect(page.get_by_role("textbox", name="输入您的问题")).to_be_visible()
    expect(page.locator("[data-pbw-offline]")).to_have_count(0)
    assert api.state.fake.texts_calls >= 1
    # the next page: the texts request fails, the remembered copy builds the widget all the same
    page.route("**/api/v1/widget/texts", lambda route: route.abort())
    open_widget(page, base + "/")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
