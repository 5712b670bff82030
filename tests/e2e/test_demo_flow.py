"""Issue acceptance, end to end: `policybot serve --demo` in its own process, the demo page in
headless Chromium, and `policybot tickets list` on the same database afterwards."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_widget import ask, last_bot, leave_message, open_widget

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_") and k != "DATABASE_URL"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'policybot.db'}"
    cli = [sys.executable, "-m", "bot.cli"]
    proc = subprocess.Popen([*cli, "serve", "--demo", "--port", str(port), "--log-level", "warning"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + (proc.stdout.read() if proc.stdout else ""))
            time.sleep(0.3)
        yield base, env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_page_answer_clarify_passage_ticket(page: Page, served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    open_widget(page, base + "/?poll_ms=1000")

    ask(page, "依申请公开多长时间答复")
    answer = last_bot(page)
    expect(answer).to_contain_text("20个工作日")
    expect(answer.locator(".pbw-source")).to_contain_text("青人社〔2023〕11号")
    expect(answer.locator(".pbw-source")).to_contain_text("二(二)")

    ask(page, "知识库")
    expect(page.locator(".pbw-chip").filter(has_text="知识库")).to_have_count(2)

    ask(page, "碳达峰")
    expect(page.locator(".pbw-kind-passage").last).to_contain_text("静安区政务公开工作要点")
    ticket_no = leave_message(page, "碳达峰试点企业有哪些扶持政策？", "王五", "13912345678")

    listed = subprocess.run([sys.executable, "-m", "bot.cli", "tickets", "list"], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    line = next(ln for ln in listed.splitlines() if ticket_no in ln)
    assert "139****5678" in line and "13912345678" not in listed
    assert re.search(r"\d{4}-\d{2}-\d{2}", line), "working-day due date shown"
    assert "待受理" in line
