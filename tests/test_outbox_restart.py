"""A staff reply survives a crash of the server while its push is pending: the WeChat API is down
(500s), the reply is given with `policybot tickets reply`, the server is killed with SIGKILL, the API
comes back, the server is started again, and the citizen gets the reply exactly once. On SQLite with
one worker and on PostgreSQL with two (both draining the same outbox)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from bot.models import Delivery
from knowledge.db import normalise_url
from tests.bot.test_wechat import OPENID, TOKEN, fixture, sign
from tests.fakes.server import serve as serve_fake
from tests.fakes.wechat_api import create_fake_wechat
from tests.serving import clean_env, serve

pytestmark = pytest.mark.slow

PASSWORD = "Qz7!" + secrets.token_urlsafe(12)


def _cli(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _say(base: str, text: str) -> str:
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    params = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    resp = httpx.post(
        base + "/wechat", params=params, content=fixture("text.xml", content=text).encode(), timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp.text


def _rows(url: str) -> list[Any]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(Delivery.status, Delivery.attempts, Delivery.data)))
    finally:
        engine.dispose()


def _until(pred: Any, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_pending_reply_is_delivered_once_after_a_crash(db_url: str, tmp_path: Path) -> None:
    workers = "2" if db_url.startswith("postgresql") else "1"
    fake_app = create_fake_wechat()
    fake = fake_app.state.fake
    with serve_fake(fake_app) as api:
        env = clean_env(
            DATABASE_URL=db_url,
            POLICYBOT_WECHAT_TOKEN=TOKEN,
            POLICYBOT_WECHAT_APP_ID=fake.app_id,
            POLICYBOT_WECHAT_SECRET=fake.secret,
            POLICYBOT_WECHAT_API_BASE=api + "/cgi-bin/",
            POLICYBOT_PUSH_BACKOFF_SECONDS="0.2",
            POLICYBOT_RATE_LIMIT_PER_IP="0",
        )
        assert _cli(env, tmp_path, "kb", "demo").returncode == 0
        added = _cli(
            env,
            tmp_path,
            "users",
            "add",
            "duban",
            "--role",
            "supervisor",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert added.returncode == 0, added.stderr
        with serve(["--workers", workers], cwd=tmp_path, env=env) as (proc, base):
            _say(base, "我家楼下的共享单车乱停放谁来管")
            assert "匿名" in _say(base, "留言")
            m = re.search(r"LY\d{8}-\d{3,6}", _say(base, "匿名"))
            assert m
            no = m.group(0)
            fake.fail_next = ["http"] * 100_000  # the WeChat API is down from now on
            replied = _cli(
                env, tmp_path, "tickets", "reply", no, "共享单车停放由街道城管中队负责。", "--as", "duban"
            )
            assert replied.returncode == 0, replied.stderr
            assert no in replied.stdout
            _until(lambda: any(r.status == "pending" and r.attempts >= 1 for r in _rows(db_url)))
            os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: every worker
            proc.wait(timeout=10)
        # nothing of the reply reached the citizen while the API was down (a slow first answer may
        # have gone out as a customer-service message before; that is not the reply)
        assert [t for t in fake.texts_to(OPENID) if no in t] == []
        listed = _cli(env, tmp_path, "deliveries", "list", "--status", "pending", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["ticket_no"] == no

        fake.fail_next = []  # the API is back
        with serve(["--workers", workers], cwd=tmp_path, env=env):
            delivered = _until(lambda: [t for t in fake.texts_to(OPENID) if no in t])
            time.sleep(3)  # several more drain rounds in every worker: nothing is sent twice
            assert [t for t in fake.texts_to(OPENID) if no in t] == delivered and len(delivered) == 1
            assert delivered[0].count(no) == 1 and "城管中队" in delivered[0]
            (row,) = _rows(db_url)
            assert row.status == "sent" and row.data["ticket_no"] == no
        shown = _cli(env, tmp_path, "deliveries", "list")
        assert "已发送" in shown.stdout
