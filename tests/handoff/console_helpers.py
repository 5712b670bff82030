"""Shared helpers of the console tests: users of every role, logging in through the form, CSRF."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from handoff.console import Accounts, ConsoleConfig

ORIGIN = {"Origin": "http://testserver"}
PASSWORDS = {
    "admin": "Admin-pass-2026",
    "alice": "Alice-pass-2026",
    "bob": "Bob-pass-2026!",
    "sue": "Super-pass-2026",
    "rita": "Reader-pass-2026",
}
OTHER_DEPT = "区绿化市容局"


def accounts(app: FastAPI) -> Accounts:
    return Accounts(app.state.sessions, ConsoleConfig(secret_key="test-secret"))


def make_users(app: FastAPI, department: str) -> None:
    """admin; alice = staff of `department`; bob = staff of another department; sue = supervisor;
    rita = drafting-unit reader of `department`."""
    acc = accounts(app)
    acc.add_user("admin", PASSWORDS["admin"], role="admin", by="test")
    acc.add_user(
        "alice", PASSWORDS["alice"], role="staff", departments=[department], display_name="张丽", by="test"
    )
    acc.add_user("bob", PASSWORDS["bob"], role="staff", departments=[OTHER_DEPT], by="test")
    acc.add_user("sue", PASSWORDS["sue"], role="supervisor", by="test")
    acc.add_user("rita", PASSWORDS["rita"], role="reader", departments=[department], by="test")


def login(client: TestClient, username: str, password: str | None = None) -> Any:
    page = client.get("/console/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post(
        "/console/login",
        headers=ORIGIN,
        follow_redirects=False,
        data={
            "username": username,
            "password": PASSWORDS.get(username, "") if password is None else password,
            "token": token.group(1),
        },
    )


def csrf(client: TestClient, path: str = "/console/account") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def signed_in(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    r = login(client, username)
    assert r.status_code == 303, r.text
    return client
