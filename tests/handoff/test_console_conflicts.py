"""The publish guard on every knowledge-base page of the console, on SQLite and PostgreSQL: retiring
an FAQ, restoring a version, adding, editing and deleting a synonym set and confirming an upload are
refused when existing phrasings of other FAQs would be answered differently. The page lists the
phrasings in Chinese, nothing is written, staff and supervisors get no override, and an admin's
「我已了解以上冲突」 repeats the request, writes it and is audited. A second tab with a stale version
gets the latest content, not an error page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app import create_app
from handoff.console.audit import AuditLog
from knowledge.demo import load_demo
from knowledge.faqs import FaqRecord
from tests.bot.conftest import make_settings
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in

OVERRIDE = "我已了解以上冲突"
MERGING = "依申请公开 主动公开"  # one word for the matcher: the two kinds of disclosure collide


@pytest.fixture
def app(db_url: str) -> FastAPI:
    app = create_app(make_settings(db_url))
    load_demo(app.state.kb.faqs, app.state.kb.policies)
    app.state.kb.refresh(force=True)
    make_users(app, app.state.kb.faqs.require("demo-003").unit)
    return app


def _post(client: TestClient, path: str, page: str, **data: Any) -> Any:
    return client.post(
        path, headers=ORIGIN, data={"csrf": csrf(client, page), **data}, follow_redirects=False
    )


def _confirmed(app: FastAPI) -> list[Any]:
    return AuditLog(app.state.sessions).list(action="faq_conflicts_confirmed")


def _unit(app: FastAPI) -> str:
    return str(app.state.kb.faqs.require("demo-003").unit)


def _near_duplicates(app: FastAPI) -> tuple[FaqRecord, FaqRecord, FaqRecord]:
    """Two near-identical park FAQs A and C, and B owning a phrasing both come close to: B's phrasing
    is a clarify between A and C today; without A, C would answer it."""
    faqs, unit = app.state.kb.faqs, _unit(app)
    add = dict(by="t", unit=unit, confirm_conflicts=True)
    a = faqs.add(question="公园健身器材损坏怎么报修", answer="甲", **add)
    c = faqs.add(question="公园健身器材损坏如何报修", answer="丙", **add)
    b = faqs.add(question="绿地设施维护找哪个部门", similar=["公园健身器材损坏报修"], answer="乙", **add)
    app.state.kb.refresh(force=True)
    return a, b, c


def test_retire_is_refused_with_the_phrasings_then_an_admin_overrides(app: FastAPI) -> None:
    a, b, c = _near_duplicates(app)
    alice = signed_in(app, "alice")
    page = f"/console/faqs/{a.id}"
    r = _post(alice, f"{page}/retire", page, reason="重复", seq=str(a.seq))
    assert r.status_code == 409
    assert "未下线" in r.text and f"「公园健身器材损坏报修」（属于 {b.id}）将改由 {c.id} 答复" in r.text
    assert OVERRIDE not in r.text and "请管理员确认" in r.text
    assert app.state.kb.faqs.require(a.id).status == "published"  # nothing written
    assert "修改历史" in r.text and 'name="reason" value="重复"' in r.text  # the page, the reason kept
    admin = signed_in(app, "admin")
    r = _post(admin, f"{page}/retire", page, reason="重复", seq=str(a.seq))
    assert r.status_code == 409 and OVERRIDE in r.text and "仍然下线" in r.text
    assert 'name="reason" value="重复"' in r.text  # the override repeats the same request
    r = _post(admin, f"{page}/retire", page, reason="重复", seq=str(a.seq), confirm_conflicts="1")
    assert r.status_code == 303 and r.headers["location"].endswith("done=faq_retired")
    assert app.state.kb.faqs.require(a.id).status == "retired"
    [entry] = _confirmed(app)
    assert (entry.actor, entry.target, entry.detail["via"]) == ("admin", a.id, "retire")
    assert b.id in entry.detail["note"]


def test_staff_override_is_ignored(app: FastAPI) -> None:
    a, _, _ = _near_duplicates(app)
    alice = signed_in(app, "alice")
    page = f"/console/faqs/{a.id}"
    r = _post(alice, f"{page}/retire", page, seq=str(a.seq), confirm_conflicts="1")
    assert r.status_code == 409 and app.state.kb.faqs.require(a.id).status == "published"
    assert _confirmed(app) == []


def test_restoring_a_corrupting_version_is_refused_then_an_admin_overrides(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    rec = faqs.require("demo-003")
    faqs.edit(rec.id, by="t", similar=[*rec.similar, "依申请公开多长时间答复"], confirm_conflicts=True)
    bad = faqs.history(rec.id)[-1].version_no
    faqs.edit(rec.id, by="t", similar=list(rec.similar))
    app.state.kb.refresh(force=True)
    seq = str(faqs.require(rec.id).seq)
    alice = signed_in(app, "alice")
    page = f"/console/faqs/{rec.id}"
    r = _post(alice, f"{page}/restore", page, version=str(bad), seq=seq)
    assert r.status_code == 409
    assert f"未恢复：恢复到第 {bad} 版后" in r.text and "（属于 demo-001）将" in r.text
    assert OVERRIDE not in r.text
    assert "依申请公开多长时间答复" not in faqs.require(rec.id).similar
    admin = signed_in(app, "admin")
    r = _post(admin, f"{page}/restore", page, version=str(bad), seq=seq)
    assert r.status_code == 409 and OVERRIDE in r.text and f"仍然恢复到第 {bad} 版" in r.text
    r = _post(admin, f"{page}/restore", page, version=str(bad), seq=seq, confirm_conflicts="1")
    assert r.status_code == 303 and "依申请公开多长时间答复" in faqs.require(rec.id).similar
    assert _confirmed(app)[0].detail["via"] == "restore"


def test_synonym_add_is_refused_then_an_admin_overrides(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    page = "/console/kb/synonyms"
    sue = signed_in(app, "sue")
    r = _post(sue, page, page, terms=MERGING)
    assert r.status_code == 409 and "未添加同义词组" in r.text and "（属于 demo-" in r.text
    assert OVERRIDE not in r.text and faqs.synonym_sets() == []
    assert f'value="{MERGING}"' in r.text  # the typed terms are kept
    admin = signed_in(app, "admin")
    r = _post(admin, page, page, terms=MERGING)
    assert r.status_code == 409 and OVERRIDE in r.text and "仍然添加" in r.text
    r = _post(admin, page, page, terms=MERGING, confirm_conflicts="1")
    assert r.status_code == 303 and faqs.synonyms() == [["依申请公开", "主动公开"]]
    [entry] = _confirmed(app)
    assert entry.detail["via"] == "synonyms_add" and "（属于 demo-" in entry.detail["note"]


def test_synonym_edit_is_refused_then_an_admin_overrides(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    set_id = faqs.add_synonyms(["政府信息", "政务信息"], by="t")
    page = "/console/kb/synonyms"
    sue = signed_in(app, "sue")
    r = _post(sue, f"{page}/{set_id}", page, terms=MERGING)
    assert r.status_code == 409 and f"未保存同义词组 {set_id}" in r.text and "（属于 demo-" in r.text
    assert OVERRIDE not in r.text and faqs.synonyms() == [["政府信息", "政务信息"]]
    assert f'id="sterms-{set_id}" name="terms" value="{MERGING}"' in r.text  # kept in its row
    admin = signed_in(app, "admin")
    r = _post(admin, f"{page}/{set_id}", page, terms=MERGING, confirm_conflicts="1")
    assert r.status_code == 303 and faqs.synonyms() == [["依申请公开", "主动公开"]]
    assert _confirmed(app)[0].target == f"synonyms:{set_id}"


def test_synonym_delete_is_refused_then_an_admin_overrides(app: FastAPI) -> None:
    """A set that one FAQ's phrasing needs: without it, another FAQ would answer that phrasing."""
    faqs, unit = app.state.kb.faqs, _unit(app)
    set_id = faqs.add_synonyms(["健身器材", "运动器械"], by="t")
    add = dict(by="t", unit=unit, confirm_conflicts=True)
    g1 = faqs.add(question="运动器械坏了报修", similar=["健身器材坏了报修"], answer="甲", **add)
    g2 = faqs.add(question="健身器材坏了怎么办", answer="乙", **add)
    page = "/console/kb/synonyms"
    sue = signed_in(app, "sue")
    r = _post(sue, f"{page}/{set_id}/delete", page)
    assert r.status_code == 409 and f"未删除同义词组 {set_id}（健身器材、运动器械）" in r.text
    assert f"「健身器材坏了报修」（属于 {g1.id}）将改由 {g2.id} 答复" in r.text
    assert OVERRIDE not in r.text and len(faqs.synonym_sets()) == 1
    admin = signed_in(app, "admin")
    r = _post(admin, f"{page}/{set_id}/delete", page)
    assert r.status_code == 409 and "仍然删除" in r.text
    r = _post(admin, f"{page}/{set_id}/delete", page, confirm_conflicts="1")
    assert r.status_code == 303 and faqs.synonym_sets() == []
    assert _confirmed(app)[0].detail["via"] == "synonyms_delete"
    # deleting it again (a second tab) says so instead of an error page
    r = _post(admin, f"{page}/{set_id}/delete", page)
    assert r.status_code == 404 and f"同义词组 {set_id} 已不存在" in r.text


PARK_CSV = (
    "编号,标准问题,相似问法,答案,制文单位\n"
    "park-1,公园健身器材损坏报修,依申请公开多长时间答复,请拨打园林热线。,{unit}\n"
)


def _upload(client: TestClient, data: bytes) -> Any:
    return client.post(
        "/console/kb/import",
        headers=ORIGIN,
        data={"csrf": csrf(client, "/console/kb/import")},
        files={"file": ("park.csv", data, "text/csv")},
        follow_redirects=False,
    )


def _token(html: str) -> str | None:
    found = re.search(r'name="token" value="([^"]+)"', html)
    return found.group(1) if found else None


def test_upload_dry_run_lists_conflicts_and_staff_cannot_confirm(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    before = faqs.version()
    data = PARK_CSV.format(unit=_unit(app)).encode()
    r = _upload(signed_in(app, "alice"), data)
    assert r.status_code == 200 and "试导入（未写入）" in r.text and "将新增 1 条" in r.text
    assert "导入后会被错误答复的已有问法" in r.text and "（属于 demo-001）" in r.text
    assert _token(r.text) is None and "import/confirm" not in r.text and "请管理员确认导入" in r.text
    assert faqs.version() == before and faqs.get("park-1") is None


def test_upload_confirm_needs_the_admin_override(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    admin = signed_in(app, "admin")
    r = _upload(admin, PARK_CSV.format(unit=_unit(app)).encode())
    token = _token(r.text)
    assert token and OVERRIDE in r.text and "（属于 demo-001）" in r.text
    confirm = "/console/kb/import/confirm"
    r = _post(admin, confirm, "/console/kb/import", token=token)  # the box not ticked
    assert r.status_code == 409 and "未导入「park.csv」" in r.text and "（属于 demo-001）" in r.text
    assert faqs.get("park-1") is None
    assert _token(r.text) == token and "仍然导入" in r.text  # the staged file waits for the override
    r = _post(admin, confirm, "/console/kb/import", token=token, confirm_conflicts="1")
    assert r.status_code == 303 and faqs.require("park-1").status == "published"
    [entry] = _confirmed(app)
    assert (entry.target, entry.detail["via"]) == ("park.csv", "import") and "demo-001" in entry.detail[
        "note"
    ]


def test_a_second_tab_with_a_stale_version_sees_the_latest(app: FastAPI) -> None:
    faqs = app.state.kb.faqs
    rec = faqs.require("demo-003")
    page = f"/console/faqs/{rec.id}"
    alice = signed_in(app, "alice")
    faqs.edit(rec.id, by="sue", answer=rec.answer + "（已更新）")  # changed in another tab
    r = _post(alice, f"{page}/retire", page, reason="x", seq=str(rec.seq))
    assert r.status_code == 409 and "该问答已被他人修改，以下为最新内容" in r.text
    assert "（已更新）" in r.text and faqs.require(rec.id).status == "published"
    r = _post(alice, f"{page}/restore", page, version="1", seq=str(rec.seq))
    assert r.status_code == 409 and "以下为最新内容" in r.text
    faqs.retire(rec.id, by="sue")
    r = _post(alice, f"{page}/retire", page, reason="x", seq=str(faqs.require(rec.id).seq))
    assert r.status_code == 409 and "该问答已下线" in r.text


def test_suggestion_override_is_offered_to_admins_before_the_buttons(app: FastAPI) -> None:
    from knowledge.suggestions import SuggestionStore

    store = SuggestionStore(app.state.kb)
    good = store.offer("demo-003", "应届生找工作有没有帮扶", source="ticket", ref="t1")
    page = "/console/suggestions"
    admin = signed_in(app, "admin")
    assert OVERRIDE not in admin.get(page).text  # nothing conflicts: no box
    bad = store.offer("demo-003", "依申请公开多长时间答复", source="ticket", ref="t2")
    html = admin.get(page).text
    assert html.index(OVERRIDE) < html.index("采纳所选")  # tick first, then click
    assert OVERRIDE not in signed_in(app, "alice").get(page).text
    r = _post(admin, page, page, action="approve", ids=[good, bad], confirm_conflicts="1")
    assert r.status_code == 303 and "done=suggestions_approved" in r.headers["location"]
    assert "依申请公开多长时间答复" in app.state.kb.faqs.require("demo-003").similar
    assert any("确认冲突后发布" in v.note for v in app.state.kb.faqs.history("demo-003"))
