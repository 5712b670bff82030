"""Shared load-test plumbing for bench/: start `policybot serve --demo --workers N` on a free
loopback port with a throw-away database, and drive it with wrk (Debian package `wrk`, a C load
generator, so that the generator does not eat the CPU the server is measured on) from a file of
prepared requests, each sent once in turn. Results are parsed from wrk's --latency report."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

LUA = r"""
local reqs = {}
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local f = assert(io.open(args[1], "r"))
  local n = tonumber(args[2])
  local i = 0
  for line in f:lines() do
    if i % n == id then
      local method, path, body = line:match("^(%u+)\t([^\t]*)\t?(.*)$")
      local headers = {}
      if body ~= "" then headers["Content-Type"] = args[3] end
      table.insert(reqs, wrk.format(method, path, headers, body ~= "" and body or nil))
    end
    i = i + 1
  end
  pos = 0
end
function request()
  pos = pos % #reqs + 1
  return reqs[pos]
end
"""


@dataclass
class WrkResult:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def row(self) -> str:
        return (
            f"{self.name:<34} {self.requests:>8} {self.rps:>9.1f} {self.p50_ms:>8.1f} {self.p99_ms:>8.1f} "
            f"{self.errors:>7}"
        )


HEADER = f"{'scenario':<34} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    return path


@contextmanager
def serve(workers: int, env_extra: dict[str, str], database_url: str | None = None) -> Iterator[str]:
    """`policybot serve --demo` in a temp dir; yields the base URL once /readyz answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_") and k != "DATABASE_URL"}
        env.update(env_extra)
        env["DATABASE_URL"] = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        log_path = Path(tmp) / "server.log"  # a file, not a pipe: a full pipe would block the server
        log_file = open(log_path, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                "--demo",
                "--workers",
                str(workers),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=tmp,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(
                        "server exited during start-up:\n" + log_path.read_text(errors="replace")
                    )
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready")
                time.sleep(0.2)
            for _ in range(50):  # warm every worker (index, jieba)
                httpx.get(base + "/readyz", timeout=5)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log_file.close()
            errors = [
                ln
                for ln in log_path.read_text(errors="replace").splitlines()
                if "Traceback" in ln or "ERROR" in ln
            ]
            if errors:
                print(f"server logged {len(errors)} errors; last lines:", file=sys.stderr)
                print("\n".join(log_path.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    name: str,
    base: str,
    requests: Sequence[tuple[str, str, str]],
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    content_type: str = "application/json",
) -> WrkResult:
    """Send (method, path, body) requests round-robin for `seconds`; bodies must be one line."""
    wrk = need_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "reqs.lua"
        script.write_text(LUA)
        data = Path(tmp) / "reqs.tsv"
        data.write_text("".join(f"{m}\t{p}\t{b}\n" for m, p, b in requests), encoding="utf-8")
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                base,
                "--",
                str(data),
                str(threads),
                content_type,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s*(\d+)%\s+([\d.]+[a-z]+)\s*$", out, re.M))
    if "99" not in lat:
        raise SystemExit("could not read wrk output:\n" + out)

    def pct(p: str) -> float:
        m = re.match(r"([\d.]+)(\w+)", lat[p])
        return _ms(m.group(1), m.group(2)) if m else float("nan")

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return WrkResult(name, total, rps, pct("50"), pct("99"), errors)
