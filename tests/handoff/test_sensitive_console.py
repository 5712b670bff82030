"""The console's 敏感词 page (admins only): add, list, delete, each audited; the words are masked on the
public board; `policybot kb sensitive` manages the same list."""

from __future__ import annotations

from fastapi import FastAPI

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, csrf, make_users, signed_in


def test_admin_adds_and_deletes_sensitive_words(demo_url: str) -> None:  # noqa: F811
    app: FastAPI = create_app(make_settings(demo_url))
    make_users(app, "政务公开办公室")
    admin = signed_in(app, "admin")
    page = admin.get("/console/admin/sensitive")
    assert page.status_code == 200 and "尚未添加敏感词" in page.text
    token = csrf(admin, "/console/admin/sensitive")
    r = admin.post(
        "/console/admin/sensitive",
        headers=ORIGIN,
        data={"csrf": token, "word": " 示例 词 "},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert [w.word for w in app.state.sensitive.list()] == ["示例词"]
    assert "示例词" in admin.get("/console/admin/sensitive").text
    empty = admin.post("/console/admin/sensitive", headers=ORIGIN, data={"csrf": token, "word": "  "})
    assert empty.status_code == 400 and "不能为空" in empty.text
    r = admin.post(
        "/console/admin/sensitive/delete",
        headers=ORIGIN,
        data={"csrf": token, "word": "示例词"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and app.state.sensitive.list() == []
    audit = admin.get("/console/audit").text
    assert "添加敏感词" in audit and "删除敏感词" in audit
    # staff cannot reach the page
    assert signed_in(app, "alice").get("/console/admin/sensitive").status_code == 403


def test_masking_keeps_the_rest_and_catches_spaced_words(demo_url: str) -> None:  # noqa: F811
    app: FastAPI = create_app(make_settings(demo_url))
    words = app.state.sensitive
    words.add("示例词")
    assert words.mask("这是示 例·词，别的不变") == "这是＊＊＊，别的不变"
    assert words.find("示 例 詞") == ["示例词"]  # traditional characters and spaces do not hide it
    assert words.find("无关的问题") == []
