"""A curator reviewing what would change the knowledge base, in headless Chromium at 1366x900 and
390x844 (live server, demo knowledge base): /console/suggestions lists three learned phrasings of
their unit, the one that would take demo-001's wording shows that conflict; they approve one (it
becomes a similar phrasing and the bot answers it), reject another, and approving the conflicting
one is refused with the conflict still listed. Uploading a file whose new FAQ would take an existing
phrasing shows the conflict on the dry run before anything is written, with no confirm button for
staff. Screenshots go to docs/screenshots/ (when missing or with POLICYBOT_SCREENSHOTS=1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from knowledge.suggestions import SuggestionStore
from tests.bot.conftest import demo_template, demo_url  # noqa: F401  (fixtures)
from tests.e2e.test_console_kb import UNIT, no_sideways_scroll, shot, site, staff, view  # noqa: F401

pytestmark = pytest.mark.browser
GOOD = "应届生找工作有没有帮扶"
DULL = "人社局公开信息都按什么原则办"
CLASH = "依申请公开多长时间答复"


def test_approve_one_reject_one_and_a_conflict_is_shown(
    staff: Page,  # noqa: F811
    site: tuple[FastAPI, str],  # noqa: F811
    view: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    app, base = site
    kb = app.state.kb
    store = SuggestionStore(kb)
    assert store.offer("demo-003", GOOD, source="ticket", ref="t1")
    assert store.offer("demo-002", DULL, source="clarify", ref="c1")
    assert store.offer("demo-003", CLASH, source="ticket", ref="t2")
    page = staff
    page.goto(base + "/console/suggestions")
    expect(page.get_by_role("heading", name="建议问法")).to_be_visible()
    clash = page.locator("tr.has-conflict")
    expect(clash).to_have_count(1)
    expect(clash).to_contain_text(CLASH)
    expect(clash.locator("ul.clash")).to_contain_text("（属于 demo-001）")
    no_sideways_scroll(page)
    shot(page, f"console-suggestions-{view}.png", tmp_path, "table.sugg")

    page.get_by_label(f"选择：{GOOD}").check()
    page.get_by_role("button", name="采纳所选").click()
    expect(page.get_by_role("status")).to_contain_text("已采纳所选建议问法")
    expect(page.locator("table.sugg")).not_to_contain_text(GOOD)
    assert GOOD in kb.faqs.require("demo-003").similar
    assert kb.ask(GOOD).faq_id == "demo-003"

    page.get_by_label(f"选择：{DULL}").check()
    page.get_by_role("button", name="拒绝所选").click()
    expect(page.get_by_role("status")).to_contain_text("已拒绝所选建议问法")
    assert DULL not in kb.faqs.require("demo-002").similar

    page.get_by_label(f"选择：{CLASH}").check()
    page.get_by_role("button", name="采纳所选").click()
    expect(page.get_by_role("status")).to_contain_text("冲突")
    expect(page.locator("tr.has-conflict")).to_contain_text("demo-001")
    assert CLASH not in kb.faqs.require("demo-003").similar
    assert kb.ask(CLASH).faq_id == "demo-001"
    page.get_by_role("link", name="已拒绝").click()
    expect(page.locator("table.sugg")).to_contain_text(DULL)


def test_upload_dry_run_shows_a_conflict_before_anything_is_written(
    staff: Page,  # noqa: F811
    site: tuple[FastAPI, str],  # noqa: F811
    view: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    app, base = site
    faqs = app.state.kb.faqs
    page = staff
    page.goto(base + "/console/kb/import")
    csv_file = tmp_path / "公园.csv"
    csv_file.write_text(
        f"编号,标准问题,相似问法,答案,制文单位\npark-1,公园健身器材损坏报修,{CLASH},请拨打园林热线。,{UNIT}\n",
        encoding="utf-8",
    )
    before = faqs.version()
    page.get_by_label("问答文件（xlsx / csv / jsonl）").set_input_files(str(csv_file))
    page.get_by_role("button", name="上传并试导入").click()
    report = page.locator("section.dry-run")
    expect(report).to_contain_text("1 条已有问法将被错误答复")
    conflicts = report.get_by_role("alert")
    expect(conflicts).to_contain_text("（属于 demo-001）")
    expect(conflicts).to_contain_text("park-1")
    expect(page.get_by_role("button", name=re.compile("^确认导入"))).to_have_count(0)
    expect(report.get_by_role("link", name="重新上传")).to_be_visible()
    assert faqs.version() == before and faqs.get("park-1") is None
    no_sideways_scroll(page)
    shot(page, f"console-import-conflict-{view}.png", tmp_path, "section.dry-run")
