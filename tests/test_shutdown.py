"""Graceful shutdown of `policybot serve`: on SIGTERM the worker keeps serving for the drain period
with /readyz at 503 (a load balancer stops sending), then exits cleanly. (`bench/fault_pg.py`
checks the same with two workers under load.)"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.serving import clean_env, serve

pytestmark = pytest.mark.slow


def test_sigterm_drains_then_exits(tmp_path: Path) -> None:
    env = clean_env(
        POLICYBOT_SHUTDOWN_DRAIN_SECONDS="3",
        POLICYBOT_JOBS_ENABLED="false",
        POLICYBOT_SPOOL_DIR=str(tmp_path / "spool"),
    )
    with serve(["--demo"], cwd=tmp_path, env=env) as (proc, base):
        session = httpx.post(base + "/api/v1/sessions", json={}, timeout=10).json()["session"]

        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(base + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        chat = httpx.post(
            base + "/api/v1/chat", json={"session": session, "text": "依申请公开多长时间答复"}, timeout=10
        )
        assert chat.status_code == 200 and chat.json()["replies"][0]["kind"] == "answer"  # still served
        assert proc.poll() is None
        assert proc.wait(timeout=20) == 0 or proc.returncode == -signal.SIGTERM
        with pytest.raises(httpx.ConnectError):  # and then gone
            httpx.get(base + "/healthz", timeout=2)
        assert "SIGTERM: serving 3.0 s more" in (tmp_path / "serve.log").read_text(errors="replace")
