"""The API docs render in Chromium with no network access beyond the app (an intranet machine):
every request to a host other than 127.0.0.1 is aborted and fails the test, and so does any
Content-Security-Policy violation or script error the page reports, except one: ReDoc's sidebar
always shows Redocly's logo from cdn.redoc.ly, which the policy blocks before any request is made
(ReDoc then hides the image)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
REDOCLY_LOGO = (
    "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates the following "
    "Content Security Policy directive: \"img-src 'self' data:\""
)


def _offline(page: Page) -> tuple[list[str], list[str]]:
    """Aborts (and records) requests to any other host; records CSP violations and page errors."""
    outside: list[str] = []
    problems: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname != "127.0.0.1":
            outside.append(url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return outside, problems


def test_swagger_ui_and_redoc_render_offline(
    page: Page,
    live_server: Callable[[Any], str],
    demo_url: str,  # noqa: F811  (the fixture)
) -> None:
    base = live_server(create_app(make_settings(demo_url)))
    outside, problems = _offline(page)

    page.goto(base + "/docs")
    chat = page.locator(".opblock-summary-path", has_text="/api/v1/chat")
    expect(chat.first).to_be_visible()
    assert page.locator(".opblock").count() >= 5  # the operations list
    chat.first.click()  # expanding an operation renders its schema (no further loads)
    expect(page.locator(".opblock-body").first).to_be_visible()

    assert problems == [], problems
    page.goto(base + "/redoc")
    expect(page.locator("h1", has_text="policybot")).to_be_visible()
    expect(page.get_by_text("/api/v1/chat").first).to_be_attached()

    assert outside == [], f"requests to other hosts: {outside}"
    assert [p for p in problems if REDOCLY_LOGO not in p] == [], problems
