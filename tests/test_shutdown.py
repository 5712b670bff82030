"""Graceful shutdown of `policybot serve`: on SIGTERM the worker keeps serving for the drain period
with /readyz at 503 (a load balancer stops sending), then exits cleanly. (`bench/fault_pg.py`
checks the same with two workers under load.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_drains_then_exits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_") and k != "DATABASE_URL"}
    env.update({"POLICYBOT_SHUTDOWN_DRAIN_SECONDS": "3", "POLICYBOT_JOBS_ENABLED": "false",
                "POLICYBOT_SPOOL_DIR": str(tmp_path / "spool")})
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--demo", "--port", str(port), "--log-level", "warning"],
            env=env, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.3)
        session = httpx.post(base + "/api/v1/sessions", json={}, timeout=10).json()["session"]

        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(base + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        chat = httpx.post(base + "/api/v1/chat", json={"session": session, "text": "依申请公开多长时间答复"}, timeout=10)
        assert chat.status_code == 200 and chat.json()["replies"][0]["kind"] == "answer"  # still served
        assert proc.poll() is None
        assert proc.wait(timeout=20) == 0 or proc.returncode == -signal.SIGTERM
        with pytest.raises(httpx.ConnectError):  # and then gone
            httpx.get(base + "/healthz", timeout=2)
        assert "SIGTERM: serving 3.0 s more" in log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
