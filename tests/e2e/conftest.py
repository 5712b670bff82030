"""Browser fixtures for the end-to-end tests: Debian's Chromium driven by Playwright, and a live server.

``browser`` (session-scoped) launches ``/usr/bin/chromium`` (or ``POLICYBOT_CHROMIUM``) through the
Python ``playwright`` package with ``executable_path``; Playwright never downloads a browser here.
Without Chromium the browser tests are skipped with the reason, unless ``POLICYBOT_REQUIRE_BROWSER=1``
(CI), which turns that into a failure. ``page`` is a fresh context (zh-CN, 1280x800) per test.
``live_server`` is a factory: ``base_url = live_server(app)`` serves any ASGI app with uvicorn in a
background thread on 127.0.0.1 and a free port, and stops it after the test. ``fake_api`` starts the
fake web API of ``fake_api.py`` and returns ``(app, base_url)``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import uvicorn

CHROMIUM = os.environ.get("POLICYBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
REQUIRE_BROWSER = os.environ.get("POLICYBOT_REQUIRE_BROWSER", "") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (POLICYBOT_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; skipped (or failed under POLICYBOT_REQUIRE_BROWSER=1) if missing."""
    exe = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not exe or not os.access(exe, os.X_OK):
        _unavailable(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install -y chromium fonts-noto-cjk); never `playwright install`"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python 'playwright' package is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    try:
        instance = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:  # a broken browser install: report it like a missing one
        pw.stop()
        _unavailable(f"Chromium at {exe} failed to start: {exc}")
    yield instance
    instance.close()
    pw.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


@contextmanager
def run_live_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port, bound before start) in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}"
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"live server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], str]]:
    """``base_url = live_server(app)``: start an ASGI app for this test; all are stopped afterwards."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(run_live_server(app))


@pytest.fixture
def fake_api(live_server: Callable[[Any], str]) -> tuple[Any, str]:
    from tests.e2e.fake_api import create_fake_app

    app = create_fake_app()
    return app, live_server(app)
