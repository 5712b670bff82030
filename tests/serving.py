"""Runs `policybot serve` as a real process for the tests that need one (browser flow, several
workers, shutdown): a free loopback port, a clean environment, wait for /readyz, stop it after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any policybot setting or DATABASE_URL, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


@contextmanager
def serve(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120, log_level: str = "warning"
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """(process, base URL) of `policybot serve <args>` once /readyz answers 200; its output goes to
    cwd/serve.log (quoted when it fails to start). SIGTERM at the end, SIGKILL if it hangs."""
    port = free_port()
    log_path = cwd / "serve.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                *args,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                log_level,
            ],
            env=env,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, "server exited:\n" + log_path.read_text(errors="replace")
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready:\n" + log_path.read_text(errors="replace")
            time.sleep(0.3)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful: uvicorn drains and stops its workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
