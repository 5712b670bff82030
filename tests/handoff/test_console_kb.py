"""The knowledge base in the staff console through the HTTP API (TestClient on the real app with the
demo knowledge base): every FAQ listed and paged, text and matcher search, each filter, sorting by
the query log, drafts hidden from other units, retire and restore with the bot following at once,
the history's field diffs, the upload dry run then a confirm that writes exactly what was shown (and
nothing when the store changed meanwhile), unit limits for staff, export, synonym sets, the hit test,
and the public /faq list (no login, current entries only, grouped by document, masked)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from handoff.console import AuditLog
from knowledge.models import china_today
from knowledge.usage import QueryLogStore
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

UNIT = "青浦区人力资源和社会保障局"  # drafting unit of demo-001 .. demo-012
OTHER_UNIT = "上海市静安区人民政府办公室"


@pytest.fixture
def app(demo_url: str) -> FastAPI:  # noqa: F811
    application = create_app(make_settings(demo_url))
    make_users(application, UNIT)
    return application


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, headers=ORIGIN, data={"csrf": csrf(client), **data}, follow_redirects=False)


def _ids(html: str) -> list[str]:
    return re.findall(r'<td class="mono" data-label="编号"><a href="/console/faqs/([^"]+)"', html)


def _audit(app: FastAPI, action: str) -> list[Any]:
    return [e for e in AuditLog(app.state.sessions).list(limit=500) if e.action == action]


# --- the list --------------------------------------------------------------------------------------
def test_every_demo_faq_is_listed_and_paged(app: FastAPI) -> None:
    rita = signed_in(app, "rita")  # a drafting-unit reader reads the whole published store
    first = rita.get("/console/faqs")
    assert first.status_code == 200
    assert "共 69 条" in first.text and "第 1 / 2 页" in first.text
    second = rita.get("/console/faqs", params={"page": 2})
    ids = _ids(first.text) + _ids(second.text)
    assert len(ids) == 69 and len(set(ids)) == 69 and ids[0] == "demo-001"
    assert rita.get("/console/faqs", params={"page": 0}).status_code == 400


def test_text_and_matcher_search(app: FastAPI) -> None:
    alice = signed_in(app, "alice")
    found = _ids(alice.get("/console/faqs", params={"q": "依申请公开"}).text)
    assert "demo-001" in found and len(found) < 69
    assert _ids(alice.get("/console/faqs", params={"q": "依申请公开 答复期限"}).text) == ["demo-001"]
    ranked = alice.get("/console/faqs", params={"q": "申请政府信息公开要等几天", "mode": "match"})
    assert _ids(ranked.text)[0] == "demo-001"
    assert "匹配 " in ranked.text and "命中问法" in ranked.text
    assert "没有符合条件的问答" in alice.get("/console/faqs", params={"q": "完全不存在的词组xyz"}).text


def test_filters(app: FastAPI) -> None:
    store = app.state.kb.faqs
    today = china_today()
    store.edit("demo-002", by="t", valid_to=today - dt.timedelta(days=1))
    store.edit("demo-003", by="t", valid_to=today + dt.timedelta(days=10))
    store.edit("demo-004", by="t", valid_from=today + dt.timedelta(days=5))
    store.retire("demo-005", by="t")
    sue = signed_in(app, "sue")

    def ids(**params: str) -> list[str]:
        return _ids(sue.get("/console/faqs", params=params).text)

    assert len(ids(unit=UNIT)) == 12 and all(int(i[-3:]) <= 12 for i in ids(unit=UNIT))
    assert ids(source="jingan-2024") and all(
        store.get(i).source_policy == "jingan-2024" for i in ids(source="jingan-2024")
    )
    assert "demo-001" in ids(tag="依申请公开") and "demo-002" not in ids(tag="依申请公开")
    assert ids(status="retired") == ["demo-005"]
    assert ids(validity="expired") == ["demo-002"]
    assert ids(validity="expiring") == ["demo-003"]
    assert ids(validity="pending") == ["demo-004"]
    current = ids(validity="current", unit=UNIT)
    assert "demo-002" not in current and "demo-004" not in current and "demo-003" in current
    # a source policy marked 废止 makes its FAQs expired whatever their dates
    app.state.kb.policies.set_status("shanghai-rsj-2019", "废止", by="t")
    assert set(ids(validity="expired")) >= {"demo-002"} | {
        r.id for r in store.list(limit=100) if r.source_policy == "shanghai-rsj-2019"
    }
    assert sue.get("/console/faqs", params={"validity": "bogus"}).status_code == 400


def test_sort_by_how_often_asked_and_rating(app: FastAPI) -> None:
    log = QueryLogStore(app.state.sessions)
    for n, (faq_id, rating) in enumerate(
        [("demo-030", "useful"), ("demo-030", "useless"), ("demo-030", None), ("demo-020", "useful")]
    ):
        row = log.record(channel="web", user_ref=f"u{n}", text="q", outcome="answer", faq_id=faq_id)
        if rating:
            log.rate(row, rating)
    sue = signed_in(app, "sue")
    assert _ids(sue.get("/console/faqs", params={"sort": "asked"}).text)[:2] == ["demo-030", "demo-020"]
    assert _ids(sue.get("/console/faqs", params={"sort": "rating"}).text)[:2] == ["demo-020", "demo-030"]
    assert _ids(sue.get("/console/faqs", params={"sort": "useless"}).text)[0] == "demo-030"
    page = sue.get("/console/faqs/demo-030").text
    assert "被问 3 次" in page and "有用 1 / 没用 1" in page


def test_drafts_are_visible_only_to_their_unit(app: FastAPI) -> None:
    store = app.state.kb.faqs
    mine = store.add(by="t", question="本单位草稿问题", unit=UNIT, status="draft", allow_empty_answer=True)
    other = store.add(by="t", question="外单位草稿问题", unit=OTHER_UNIT, status="draft", answer="x")
    alice, bob, sue = (signed_in(app, u) for u in ("alice", "bob", "sue"))
    assert mine.id in _ids(alice.get("/console/faqs", params={"status": "draft"}).text)
    assert other.id not in _ids(alice.get("/console/faqs", params={"status": "draft"}).text)
    assert alice.get(f"/console/faqs/{other.id}").status_code == 404
    assert "待审核草稿 1 条" in alice.get("/console/faqs").text
    assert {mine.id, other.id} <= set(_ids(sue.get("/console/faqs", params={"status": "draft"}).text))
    assert bob.get(f"/console/faqs/{mine.id}").status_code == 404
    # a published FAQ of another unit: readable, not editable
    page = bob.get("/console/faqs/demo-001")
    assert (
        page.status_code == 200 and 'name="question"' not in page.text and "依申请公开多久答复" in page.text
    )


# --- retire, restore, history ----------------------------------------------------------------------
def test_retire_and_restore_follow_the_bot_and_are_audited(app: FastAPI) -> None:
    kb = app.state.kb
    assert kb.ask("依申请公开多久答复").faq_id == "demo-001"
    alice, bob, rita = (signed_in(app, u) for u in ("alice", "bob", "rita"))
    assert _post(bob, "/console/faqs/demo-001/retire", reason="x").status_code == 404
    assert _post(rita, "/console/faqs/demo-001/retire", reason="x").status_code == 403
    stale = str(kb.faqs.get("demo-001").seq - 1)
    assert _post(alice, "/console/faqs/demo-001/retire", reason="x", seq=stale).status_code == 409
    seq = str(kb.faqs.get("demo-001").seq)
    r = _post(alice, "/console/faqs/demo-001/retire", reason="政策已调整", seq=seq)
    assert r.status_code == 303 and r.headers["location"].endswith("done=faq_retired")
    assert kb.faqs.get("demo-001").status == "retired"
    assert kb.ask("依申请公开多久答复").faq_id != "demo-001"
    assert _audit(app, "faq_retire")[0].actor == "alice"
    page = alice.get("/console/faqs/demo-001").text
    assert "下线" in page and "政策已调整" in page and "恢复此版" in page
    # restore the first version: published again, the bot answers with it at once
    r = _post(alice, "/console/faqs/demo-001/restore", version="1", seq=str(kb.faqs.get("demo-001").seq))
    assert r.status_code == 303
    assert kb.faqs.get("demo-001").status == "published"
    assert kb.ask("依申请公开多久答复").faq_id == "demo-001"
    assert [v.action for v in kb.faqs.history("demo-001")][-2:] == ["retire", "restore"]
    assert _audit(app, "faq_restore")[0].detail["version"] == 1
    assert _post(alice, "/console/faqs/demo-001/restore", version="99").status_code == 404


def test_history_shows_field_diffs(app: FastAPI) -> None:
    store = app.state.kb.faqs
    old = store.get("demo-001")
    store.edit(
        "demo-001",
        by="alice",
        answer=old.answer.replace("20个工作日", "15个工作日"),
        similar=[*old.similar[1:], "信息公开多少天答复"],
    )
    page = signed_in(app, "alice").get("/console/faqs/demo-001").text
    assert "<del>20</del><ins>15</ins>" in page.replace("\n", "")
    assert f'<del class="item">{old.similar[0]}</del>' in page
    assert '<ins class="item">信息公开多少天答复</ins>' in page
    assert "第 2 版" in page and "修改" in page


# --- import --------------------------------------------------------------------------------------
def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _upload(client: TestClient, name: str, data: bytes, **form: str) -> Any:
    return client.post(
        "/console/kb/import",
        headers=ORIGIN,
        data={"csrf": csrf(client), **form},
        files={"file": (name, data, "application/octet-stream")},
        follow_redirects=False,
    )


def _token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html[-2000:]
    return found.group(1)


ROWS = [
    {
        "编号": "demo-001",
        "标准问题": "依申请公开多久答复",
        "答案": "新的答案：20个工作日内答复。",
        "制文单位": UNIT,
    },
    {"编号": "", "标准问题": "人社局的新问题", "答案": "新问题的答案。", "制文单位": UNIT},
]


def test_upload_dry_run_then_confirm_writes_what_was_shown(app: FastAPI) -> None:
    store = app.state.kb.faqs
    alice = signed_in(app, "alice")
    before = store.version()
    r = _upload(alice, "faqs.csv", _csv(ROWS))
    assert r.status_code == 200
    assert "试导入（未写入）" in r.text and "将新增 1 条" in r.text and "将更新 1 条" in r.text
    assert "人社局的新问题" in r.text and "<ins>新的答案：20个工作日内答复。</ins>" in r.text
    assert store.version() == before and store.get("demo-001").answer != ROWS[0]["答案"]
    token = _token(r.text)
    r = alice.post(
        "/console/kb/import/confirm",
        headers=ORIGIN,
        data={"csrf": csrf(alice), "token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert store.get("demo-001").answer == ROWS[0]["答案"]
    assert store.count(text="人社局的新问题") == 1
    assert app.state.kb.ask("人社局的新问题").decision == "answer"
    assert _audit(app, "faq_import")[0].detail["created"] == 1
    # the token is used up
    again = alice.post(
        "/console/kb/import/confirm", headers=ORIGIN, data={"csrf": csrf(alice), "token": token}
    )
    assert again.status_code == 400 and "请重新上传文件" in again.text


def test_confirm_refused_when_the_store_changed(app: FastAPI) -> None:
    store = app.state.kb.faqs
    alice = signed_in(app, "alice")
    token = _token(_upload(alice, "faqs.csv", _csv(ROWS)).text)
    store.edit("demo-002", by="someone", answer="别人刚改过的答案")
    r = alice.post("/console/kb/import/confirm", headers=ORIGIN, data={"csrf": csrf(alice), "token": token})
    assert r.status_code == 400 and "重新上传文件试导入" in r.text
    assert store.get("demo-001").answer != ROWS[0]["答案"] and store.count(text="人社局的新问题") == 0


def test_upload_errors_and_unit_limits(app: FastAPI) -> None:
    alice, bob, sue = (signed_in(app, u) for u in ("alice", "bob", "sue"))
    bad = _upload(
        alice,
        "faqs.csv",
        _csv(
            [
                {"标准问题": "", "答案": "x", "生效日期": ""},
                {"标准问题": "好问题", "答案": "x", "生效日期": "明天"},
            ]
        ),
    )
    assert (
        bad.status_code == 400 and "未通过检查，未写入任何数据" in bad.text and 'name="token"' not in bad.text
    )
    assert re.search(r"<td class=\"num\">2</td><td>标准问题</td>", bad.text)  # row and column shown
    assert re.search(r"<td class=\"num\">3</td><td>生效日期</td>", bad.text)
    assert _upload(alice, "faqs.xls", b"x").status_code == 400
    refused = _upload(bob, "faqs.csv", _csv(ROWS))  # bob's department is not the rows' unit
    assert refused.status_code == 400 and "您只能导入本部门的问答" in refused.text
    jsonl = "\n".join(
        json.dumps({"question": f"督办导入{i}", "answer": "答", "unit": OTHER_UNIT}, ensure_ascii=False)
        for i in range(3)
    )
    ok = _upload(sue, "faqs.jsonl", jsonl.encode())
    assert ok.status_code == 200 and "将新增 3 条" in ok.text and 'name="token"' in ok.text
    assert signed_in(app, "rita").get("/console/kb/import").status_code == 403


def test_upload_larger_than_the_body_limit_of_other_routes(app: FastAPI) -> None:
    alice = signed_in(app, "alice")
    rows = [{"标准问题": f"批量问题{i}", "答案": "答" * 200, "制文单位": UNIT} for i in range(400)]
    data = _csv(rows)
    assert len(data) > 65536
    r = _upload(alice, "many.csv", data)
    assert r.status_code == 200 and "将新增 400 条" in r.text


# --- export --------------------------------------------------------------------------------------
def test_export_formats(app: FastAPI) -> None:
    sue, alice = signed_in(app, "sue"), signed_in(app, "alice")
    for fmt in ("xlsx", "csv", "jsonl"):
        r = sue.get("/console/kb/export", params={"format": fmt, "status": "all"})
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        assert len(r.content) > 1000
    lines = sue.get("/console/kb/export", params={"format": "jsonl"}).text.splitlines()
    assert len(lines) == 69 and json.loads(lines[0])["id"] == "demo-001"
    assert alice.get("/console/kb/export", params={"format": "csv", "status": "draft"}).status_code == 400
    assert alice.get("/console/kb/export", params={"format": "csv"}).status_code == 200
    assert _audit(app, "faq_export")


# --- synonyms and hit test -------------------------------------------------------------------------
def test_synonym_sets_and_hit_test(app: FastAPI) -> None:
    kb = app.state.kb
    sue, alice = signed_in(app, "sue"), signed_in(app, "alice")
    assert _post(alice, "/console/kb/synonyms", terms="依申请公开 申请公开").status_code == 403
    assert _post(sue, "/console/kb/synonyms", terms="只有一个").status_code == 400
    assert _post(sue, "/console/kb/synonyms", terms="答复 回音").status_code == 303
    set_id = kb.faqs.synonym_sets()[0].id
    page = alice.get("/console/kb/synonyms").text
    assert "回音" in page and "删除" not in page  # staff read only
    test = alice.get("/console/hit-test", params={"q": "依申请公开多久给回音？"}).text
    assert "同义词替换" in test and "依申请公开多久给答复" in test
    # the thresholds the store calibrated for itself (knowledge.calibration), as the bot uses them
    assert "直接回答" in test and "demo-001" in test and f"直接回答阈值 {kb.thresholds.answer:.2f}" in test
    assert _post(sue, f"/console/kb/synonyms/{set_id}", terms="答复 回音 回话").status_code == 303
    assert kb.faqs.synonym_sets()[0].terms == ("答复", "回音", "回话")
    assert "依申请公开多久给答复" in alice.get("/console/hit-test", params={"q": "依申请公开多久给回话"}).text
    assert _post(sue, f"/console/kb/synonyms/{set_id}/delete").status_code == 303
    assert kb.faqs.synonym_sets() == []
    assert {e.action for e in AuditLog(app.state.sessions).list(limit=100)} >= {
        "synonyms_add",
        "synonyms_edit",
        "synonyms_delete",
    }
    unknown = alice.get("/console/hit-test", params={"q": "今天天气怎么样"}).text
    assert "无法回答" in unknown or "引用政策原文" in unknown
    assert "✗" in unknown


# --- the public FAQ list ---------------------------------------------------------------------------
def test_public_faq_list(app: FastAPI) -> None:
    store = app.state.kb.faqs
    store.retire("demo-002", by="t")
    store.edit("demo-003", by="t", valid_to=china_today() - dt.timedelta(days=1))
    store.add(by="t", question="草稿不公开", answer="x", unit=UNIT, status="draft")
    store.edit("demo-004", by="t", answer=store.get("demo-004").answer + " 联系人手机13912345678。")
    anon = TestClient(app)
    page = anon.get("/faq")
    assert page.status_code == 200
    text = page.text
    assert "依申请公开多久答复" in text
    for hidden in (
        store.get("demo-002").question,
        store.get("demo-003").question,
        "草稿不公开",
        "13912345678",
    ):
        assert hidden not in text
    assert "青人社〔2023〕11号" in text and "二(二)" in text  # grouped by document with 文号 and article
    assert store.get("demo-001").similar[0] not in text  # no similar phrasings on the public page
    assert "共 67 条" in text
    found = anon.get("/faq", params={"q": "申请政府信息公开要等几天"}).text
    assert found.index("依申请公开多久答复") < found.index("查看全部常见问题")
    assert "搜索结果" in found
    assert 'name="csrf"' not in text and "/console/logout" not in text


def test_upload_limits(demo_url: str) -> None:  # noqa: F811
    app = create_app(make_settings(demo_url, console_upload_max_bytes=4096))
    make_users(app, UNIT)
    alice = signed_in(app, "alice")
    rows = [{"标准问题": f"问题{i}", "答案": "答" * 50, "制文单位": UNIT} for i in range(40)]
    big = _upload(alice, "big.csv", _csv(rows))
    assert big.status_code == 400 and "文件过大" in big.text
    huge = _upload(alice, "huge.csv", b"x" * 200_000)
    assert huge.status_code == 413
    other = alice.post("/console/account", headers=ORIGIN, data={"csrf": "x", "pad": "y" * 70_000})
    assert other.status_code == 413  # only the upload route accepts large bodies
