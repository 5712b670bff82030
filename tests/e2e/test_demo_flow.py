"""Issue acceptance, end to end: `policybot serve --demo` in its own process, the demo page in
headless Chromium, and `policybot tickets list` on the same database afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_widget import ask, last_bot, leave_message, open_widget
from tests.serving import clean_env, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'policybot.db'}")
    with serve(["--demo"], cwd=tmp_path, env=env, timeout=90) as (_, base):
        yield base, env


def test_demo_page_answer_clarify_passage_ticket(page: Page, served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    open_widget(page, base + "/?poll_ms=1000")

    ask(page, "依申请公开多长时间答复")
    answer = last_bot(page)
    expect(answer).to_contain_text("20个工作日")
    # one citation: the FAQ text names document, 文号 and article; no second source list
    assert answer.inner_text().count("青人社〔2023〕11号") == 1 and "二(二)" in answer.inner_text()
    expect(answer.locator(".pbw-source")).to_have_count(0)

    ask(page, "知识库")
    chips = page.locator(".pbw-chip").filter(has_text="知识库")  # a clarify: the FAQs about 知识库
    expect(chips.first).to_be_visible()
    assert 2 <= chips.count() <= 3

    ask(page, "碳达峰")
    expect(page.locator(".pbw-kind-passage").last).to_contain_text("静安区政务公开工作要点")
    ticket_no = leave_message(page, "碳达峰试点企业有哪些扶持政策？", "王五", "13912345678")

    listed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "tickets", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    line = next(ln for ln in listed.splitlines() if ticket_no in ln)
    assert "139****5678" in line and "13912345678" not in listed
    assert re.search(r"\d{4}-\d{2}-\d{2}", line), "working-day due date shown"
    assert "待受理" in line
