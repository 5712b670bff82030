"""Route-by-role matrix of the staff console: every route under /console, every role (and anonymous).

The expected table below is the specification; the test fails when a route exists that the table does
not classify, and when any role reaches a route it should not (anonymous GET -> redirect to the login
page, anonymous POST -> 403, wrong role -> 403) or is refused one it should reach. A staff member of
another department gets 404 on every route of a ticket that is not theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bot.app import create_app
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.handoff.console_helpers import ORIGIN, OTHER_DEPT, accounts, csrf, make_users, signed_in

PUBLIC = "public"
ADMIN, STAFF, SUPER, READER = "admin", "staff", "supervisor", "reader"
ALL = {ADMIN, STAFF, SUPER, READER}
HANDLE = {STAFF, SUPER}

EXPECTED: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/console/static/{name}"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): ALL,
    ("GET", "/console/"): ALL,
    ("GET", "/console/account"): ALL,
    ("POST", "/console/account"): ALL,
    ("GET", "/console/queue"): ALL,  # admins read every queue, read-only
    ("GET", "/console/api/counts"): ALL,
    ("GET", "/console/tickets/{no}"): ALL,
    ("POST", "/console/queue/bulk"): HANDLE,
    ("POST", "/console/tickets/{no}/interim"): HANDLE,
    ("POST", "/console/tickets/{no}/merge"): HANDLE,
    ("POST", "/console/tickets/{no}/assign"): HANDLE,
    ("POST", "/console/tickets/{no}/reply"): HANDLE,
    ("POST", "/console/tickets/{no}/note"): HANDLE,
    ("POST", "/console/tickets/{no}/transfer"): HANDLE,
    ("POST", "/console/tickets/{no}/close"): HANDLE,
    ("POST", "/console/tickets/{no}/reopen"): HANDLE,
    ("POST", "/console/tickets/{no}/publish"): HANDLE,
    ("POST", "/console/tickets/{no}/unpublish"): HANDLE,
    ("POST", "/console/tickets/{no}/promote"): HANDLE,
    ("GET", "/console/faq-search"): HANDLE,
    ("GET", "/console/faqs"): ALL,  # every published FAQ; drafts only of the user's units
    ("GET", "/console/faqs/{faq_id}"): ALL,
    ("POST", "/console/faqs/{faq_id}"): ALL,
    ("POST", "/console/faqs/{faq_id}/publish"): {ADMIN, STAFF, SUPER},
    ("POST", "/console/faqs/{faq_id}/retire"): {ADMIN, STAFF, SUPER},
    ("POST", "/console/faqs/{faq_id}/restore"): {ADMIN, STAFF, SUPER},
    ("GET", "/console/kb/export"): ALL,  # staff and readers: published entries only
    ("GET", "/console/kb/import"): {ADMIN, STAFF, SUPER},
    ("POST", "/console/kb/import"): {ADMIN, STAFF, SUPER},
    ("POST", "/console/kb/import/confirm"): {ADMIN, STAFF, SUPER},
    ("GET", "/console/kb/synonyms"): ALL,
    ("POST", "/console/kb/synonyms"): {ADMIN, SUPER},
    ("POST", "/console/kb/synonyms/{set_id}"): {ADMIN, SUPER},
    ("POST", "/console/kb/synonyms/{set_id}/delete"): {ADMIN, SUPER},
    ("GET", "/console/hit-test"): ALL,
    ("GET", "/console/suggestions"): ALL,  # readers: their unit's candidates (reject only)
    ("POST", "/console/suggestions"): ALL,
    ("POST", "/console/suggestions/welcome"): {ADMIN, STAFF, SUPER},  # saved for admin/supervisor only
    ("GET", "/console/reports"): {SUPER, READER},
    ("GET", "/console/weekly"): ALL,  # staff and readers: their units only
    ("GET", "/console/weekly/{week}"): ALL,
    ("GET", "/console/weekly/{week}/chart.png"): ALL,
    ("GET", "/console/weekly/{week}/download"): ALL,
    ("POST", "/console/weekly/{week}/draft"): ALL,
    ("GET", "/console/upkeep"): ALL,  # staff and readers: their units only
    ("POST", "/console/upkeep/reviews/{item_id}/done"): {ADMIN, STAFF, SUPER},
    ("POST", "/console/weekly/special/{no}/close"): ALL,  # the case's unit (readers too) or an admin
    ("GET", "/console/dashboard"): {ADMIN, SUPER},
    ("GET", "/console/dashboard.csv"): {ADMIN, SUPER},
    ("GET", "/console/admin/users"): {ADMIN},
    ("POST", "/console/admin/users"): {ADMIN},
    ("POST", "/console/admin/users/{user_id}"): {ADMIN},
    ("POST", "/console/admin/users/{user_id}/password"): {ADMIN},
    ("GET", "/console/admin/departments"): {ADMIN},
    ("POST", "/console/admin/departments"): {ADMIN},
    ("POST", "/console/admin/departments/{dept_id}"): {ADMIN},
    ("GET", "/console/admin/templates"): {ADMIN},
    ("POST", "/console/admin/templates"): {ADMIN},
    ("POST", "/console/admin/templates/{tid}"): {ADMIN},
    ("POST", "/console/admin/templates/{tid}/delete"): {ADMIN},
    ("GET", "/console/admin/sensitive"): {ADMIN},
    ("POST", "/console/admin/sensitive"): {ADMIN},
    ("POST", "/console/admin/sensitive/delete"): {ADMIN},
    ("GET", "/console/admin/smalltalk"): {ADMIN},
    ("POST", "/console/admin/smalltalk/{intent}/phrases"): {ADMIN},
    ("POST", "/console/admin/smalltalk/{intent}/phrases/delete"): {ADMIN},
    ("POST", "/console/admin/smalltalk/{intent}/reply"): {ADMIN},
    ("POST", "/console/admin/smalltalk/{intent}/reset"): {ADMIN},
    ("GET", "/console/admin/time-limits"): {ADMIN},
    ("POST", "/console/admin/time-limits"): {ADMIN},
    ("POST", "/console/tickets/{no}/category"): HANDLE,
    ("POST", "/console/tickets/{no}/extension"): HANDLE,
    ("POST", "/console/tickets/{no}/extension/decide"): {SUPER},
    ("POST", "/console/tickets/{no}/supplement"): HANDLE,
    ("POST", "/console/tickets/{no}/resume"): HANDLE,
    ("GET", "/console/audit"): {ADMIN},
    ("GET", "/console/audit.csv"): {ADMIN},
}
USERS = {ADMIN: "admin", STAFF: "alice", SUPER: "sue", READER: "rita"}


def flat_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, also those of included routers (FastAPI >= 0.16x keeps them in a wrapper)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from flat_routes(list(inner.routes))
        else:
            yield r


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for r in flat_routes(list(app.routes)):
        if isinstance(r, APIRoute) and r.path.startswith("/console"):
            for m in r.methods:
                found.add((m, r.path))
    return found


@pytest.fixture
def world(demo_url: str) -> Iterator[tuple[FastAPI, dict[str, str]]]:  # noqa: F811
    app = create_app(make_settings(demo_url))
    tickets = app.state.tickets
    t = tickets.open(
        question="垃圾分类补贴怎么申请？",
        channel="web",
        user_ref="u-1",
        contact_name="李四",
        contact_phone="13812345678",
        consent=True,
    )
    t = tickets.reply(t.no, staff="seed", text="请向街道办事处申请。")
    faq = app.state.kb.faqs.add(
        by="seed", question="测试草稿问题", answer="草稿答案", unit=t.department, status="draft"
    )
    make_users(app, t.department)
    acc_users = {u.username: u.id for u in accounts(app).users()}
    admin = signed_in(app, "admin")
    token = csrf(admin)
    admin.post(
        "/console/admin/templates", headers=ORIGIN, data={"csrf": token, "title": "模板", "body": "内容"}
    )
    admin.post("/console/admin/departments", headers=ORIGIN, data={"csrf": token, "name": "区发改委"})
    params = {
        "name": "console.css",
        "week": "2026-W47",
        "no": t.no,
        "faq_id": faq.id,
        "user_id": str(acc_users["bob"]),
        "dept_id": "1",
        "tid": "1",
        "item_id": "999999",
        "set_id": "1",
        "intent": "thanks",
    }
    yield app, params


def _form(client: TestClient, method: str, path: str, token: str) -> dict[str, str] | None:
    """The session's CSRF token; the login form carries its own anonymous token."""
    if method != "POST":
        return None
    if path == "/console/login":
        found = re.search(r'name="token" value="([^"]+)"', client.get("/console/login").text)
        assert found
        return {"token": found.group(1), "username": "nobody", "password": "wrong"}
    return {"csrf": token}


def _url(path: str, params: dict[str, str]) -> str:
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    return path


def test_every_console_route_is_classified(world: tuple[FastAPI, dict[str, str]]) -> None:
    app, _ = world
    assert console_routes(app) == set(EXPECTED), "classify new console routes in EXPECTED"


def test_route_role_matrix(world: tuple[FastAPI, dict[str, str]]) -> None:
    app, params = world
    anon = TestClient(app)
    clients = {role: signed_in(app, USERS[role]) for role in USERS}
    tokens = {role: csrf(c) for role, c in clients.items()}
    # logout last: it ends the session the other requests use
    order = sorted(EXPECTED, key=lambda k: k == ("POST", "/console/logout"))
    problems: list[str] = []
    for method, path in order:
        allowed = EXPECTED[(method, path)]
        url = _url(path, params)
        r = anon.request(
            method, url, headers=ORIGIN, data=_form(anon, method, path, ""), follow_redirects=False
        )
        if allowed == PUBLIC:
            if r.status_code in (401, 403) or r.headers.get("location", "").startswith("/console/login?"):
                problems.append(f"anonymous refused public {method} {path}: {r.status_code}")
        elif method == "GET":
            if not (r.status_code == 303 and r.headers["location"].startswith("/console/login")):
                problems.append(f"anonymous GET {path}: {r.status_code} (want redirect to login)")
        elif r.status_code != 403:
            problems.append(f"anonymous POST {path}: {r.status_code} (want 403)")
        for role, client in clients.items():
            data = _form(client, method, path, tokens[role])
            r = client.request(method, url, headers=ORIGIN, data=data, follow_redirects=False)
            location = r.headers.get("location", "")
            reached = r.status_code != 403 and not location.startswith("/console/login?")
            want = allowed == PUBLIC or role in allowed
            if reached != want:
                problems.append(f"{role} {method} {path}: {r.status_code} {location} (should reach: {want})")
            assert r.status_code < 500, (role, method, path, r.text[-500:])
    assert not problems, "\n".join(problems)


def test_other_department_cannot_reach_a_ticket(world: tuple[FastAPI, dict[str, str]]) -> None:
    app, params = world
    bob = signed_in(app, "bob")
    token = csrf(bob)
    ticket_routes = [k for k in EXPECTED if "{no}" in k[1]]
    assert len(ticket_routes) >= 10
    for method, path in ticket_routes:
        r = bob.request(
            method,
            _url(path, params),
            headers=ORIGIN,
            follow_redirects=False,
            data={
                "csrf": token,
                "version": "1",
                "text": "x",
                "reason": "x",
                "department": OTHER_DEPT,
                "question": "x",
                "answer": "x",
            }
            if method == "POST"
            else None,
        )
        assert r.status_code == 404, (method, path, r.status_code)
    # nor through the queue's department filter
    assert bob.get("/console/queue", params={"department": "政务公开办公室"}).status_code == 403
    assert params["no"] not in bob.get("/console/queue").text
