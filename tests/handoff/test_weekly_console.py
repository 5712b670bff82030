"""The weekly unanswered-questions reports in the console: the list by week and unit (a drafting-unit
reader sees only their unit, supervisors and admins every unit and the overview), the report page
with its chart, HTML and XLSX downloads, and "生成问答草稿" turning a topic into an FAQ draft that
the reader can edit but not publish, audited, and not duplicated by a second click."""

from __future__ import annotations

import io
import re

import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, OTHER_DEPT, csrf, signed_in
from tests.handoff.report_seed import MED_TEXTS, Seeded, seed_week


@pytest.fixture
def world(demo_url: str) -> tuple[FastAPI, Seeded]:  # noqa: F811
    app = create_app(make_settings(demo_url))
    return app, seed_week(app)


def test_reader_sees_only_their_unit(world: tuple[FastAPI, Seeded]) -> None:
    app, seeded = world
    rita = signed_in(app, "rita")
    page = rita.get(f"/console/weekly?week={seeded.week}")
    assert page.status_code == 200
    assert seeded.department in page.text and OTHER_DEPT not in page.text and "全部单位总览" not in page.text
    assert rita.get(f"/console/weekly/{seeded.week}", params={"unit": OTHER_DEPT}).status_code == 404
    own = rita.get(f"/console/weekly/{seeded.week}")  # one unit: shown without choosing
    assert own.status_code == 200 and "新生儿医保" in own.text and "养犬" not in own.text
    assert "生成问答草稿" in own.text
    assert (
        rita.get(
            f"/console/weekly/{seeded.week}/download", params={"unit": OTHER_DEPT, "format": "xlsx"}
        ).status_code
        == 404
    )
    # supervisors see every unit and the overview
    sue = signed_in(app, "sue")
    listing = sue.get(f"/console/weekly?week={seeded.week}").text
    assert seeded.department in listing and OTHER_DEPT in listing and "全部单位总览" in listing
    overview = sue.get(f"/console/weekly/{seeded.week}").text
    assert "新生儿医保" in overview and "养犬" in overview
    assert sue.get("/console/weekly/2026-W99").status_code == 400


def test_report_chart_and_downloads(world: tuple[FastAPI, Seeded]) -> None:
    app, seeded = world
    rita = signed_in(app, "rita")
    chart = rita.get(f"/console/weekly/{seeded.week}/chart.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    xlsx = rita.get(f"/console/weekly/{seeded.week}/download", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(xlsx.content))
    topics = list(wb["主题"].iter_rows(values_only=True))
    assert len(topics) >= 2 and all(seeded.department == r[topics[0].index("承办单位")] for r in topics[1:])
    html = rita.get(f"/console/weekly/{seeded.week}/download", params={"format": "html"})
    assert html.status_code == 200 and "data:image/png;base64," in html.text and seeded.ticket_no in html.text
    assert "filename*=UTF-8''" in html.headers["content-disposition"]
    assert rita.get(f"/console/weekly/{seeded.week}/download", params={"format": "pdf"}).status_code == 400


def test_reader_turns_a_topic_into_an_faq_draft(world: tuple[FastAPI, Seeded]) -> None:
    app, seeded = world
    rita = signed_in(app, "rita")
    url = f"/console/weekly/{seeded.week}"
    page = rita.get(url).text
    form = re.search(
        r'name="topic" value="(T\d+)">\s*<input type="hidden" name="question" value="([^"]+)"', page
    )
    assert form, page
    token = csrf(rita)
    data = {"csrf": token, "topic": form.group(1), "question": form.group(2)}
    # a stale page (the topic renumbered or changed) is refused, nothing created
    stale = rita.post(
        f"{url}/draft", headers=ORIGIN, data={**data, "question": "别的问题"}, follow_redirects=False
    )
    assert stale.status_code == 404 and "刷新" in stale.text
    r = rita.post(f"{url}/draft", headers=ORIGIN, data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=draft")
    faq_id = r.headers["location"].split("/")[-1].split("?")[0]
    rec = app.state.kb.faqs.get(faq_id)
    assert rec is not None and rec.status == "draft" and rec.unit == seeded.department
    assert rec.question == form.group(2) and rec.question in MED_TEXTS and len(rec.similar) >= 2
    assert rec.answer == seeded.reply  # the ticket reply of the topic
    assert f"周报{seeded.week}" in rec.tags
    # the reader reviews the draft: may edit and save, may not publish
    draft_page = rita.get(f"/console/faqs/{faq_id}")
    assert draft_page.status_code == 200 and "保存并发布" not in draft_page.text
    save = rita.post(
        f"/console/faqs/{faq_id}",
        headers=ORIGIN,
        follow_redirects=False,
        data={
            "csrf": token,
            "question": rec.question,
            "similar": "\n".join(rec.similar),
            "answer": rec.answer + "（已核对）",
            "tags": "，".join(rec.tags),
            "unit": seeded.department,
            "source_policy": "",
            "source_article": "",
            "seq": str(rec.seq),
        },
    )
    assert save.status_code == 303
    assert (
        rita.post(
            f"/console/faqs/{faq_id}/publish", headers=ORIGIN, data={"csrf": token}, follow_redirects=False
        ).status_code
        == 403
    )
    # a second click opens the same draft; the report page links it
    again = rita.post(f"{url}/draft", headers=ORIGIN, data=data, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == f"/console/faqs/{faq_id}"
    assert f"/console/faqs/{faq_id}" in rita.get(url).text
    # audited
    audit = signed_in(app, "admin").get("/console/audit", params={"action": "faq_draft"}).text
    assert "生成问答草稿" in audit and faq_id in audit and "rita" in audit
    # another unit's topic cannot be drafted by this reader
    sue_page = signed_in(app, "sue").get(url).text
    dog = re.search(
        r'name="topic" value="(T\d+)">\s*<input type="hidden" name="question" value="(养[^"]+)"', sue_page
    )
    assert dog
    refused = rita.post(
        f"{url}/draft",
        headers=ORIGIN,
        follow_redirects=False,
        data={"csrf": token, "topic": dog.group(1), "question": dog.group(2)},
    )
    assert refused.status_code == 404
