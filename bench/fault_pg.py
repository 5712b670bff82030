"""Fault tests on a throw-away PostgreSQL cluster (initdb into a temp folder from
/usr/lib/postgresql/15/bin, its own free port on 127.0.0.1, trust auth; the machine's shared server
is never touched) with `policybot serve --workers 2` (WeChat in plain mode):

  (a) outage: the database is stopped for --outage seconds while WeChat text messages keep coming;
      each must be answered (or `success`) within 5 s; after the database is back every message must
      appear in the query log (spooled during the outage, replayed after);
  (b) kill -9 of a worker during POST /api/v1/tickets with an idempotency_key: the client's retry
      (to the surviving worker / the respawned one) yields exactly one ticket;
  (c) SIGTERM while requests are in flight: they all complete (graceful drain).

    python bench/fault_pg.py [--outage 60]          # the documented full run; CI uses --outage 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from loadgen import free_port
from wechatpy.utils import WeChatSigner

PG_BIN = Path(os.environ.get("POLICYBOT_PG_BIN", "/usr/lib/postgresql/15/bin"))
TOKEN, ACCOUNT = "faultToken", "gh_fault0001"
QUESTIONS = ["依申请公开多长时间答复", "知识库", "碳达峰", "申请政府信息公开要多少天", "你好"]


class Cluster:
    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.log = root / "pg.log"
        # PostgreSQL refuses to run as root: then as the `postgres` system user
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(root, user="postgres")
        subprocess.run(
            [
                *self.prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-o",
                f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )


def wechat_request(base: str, user: str, msg_id: int, text: str) -> tuple[int, str, float]:
    ts, nonce = str(int(time.time())), str(msg_id)
    signer = WeChatSigner()
    signer.add_data(TOKEN, ts, nonce)
    xml = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
    t0 = time.monotonic()
    r = httpx.post(
        f"{base}/wechat",
        params={"signature": signer.signature, "timestamp": ts, "nonce": nonce},
        content=xml.encode(),
        timeout=10,
    )
    return r.status_code, r.text, time.monotonic() - t0


def serve(tmp: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    env.update(
        DATABASE_URL=url,
        POLICYBOT_WECHAT_TOKEN=TOKEN,
        POLICYBOT_RATE_LIMIT_PER_IP="0",
        POLICYBOT_RATE_LIMIT_PER_SESSION="0",
        POLICYBOT_SPOOL_DIR=str(tmp / "spool"),
        POLICYBOT_EXPOSE_WORKER="true",
        POLICYBOT_JOBS_ENABLED="false",
    )
    log = open(tmp / "server.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--demo",
            "--workers",
            "2",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                for _ in range(20):
                    httpx.get(base + "/readyz", timeout=5)
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not start:\n" + (tmp / "server.log").read_text(errors="replace")[-3000:])


def count_log(url: str, like: str) -> int:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.connect() as c:
        n = int(
            c.execute(text("SELECT count(*) FROM query_log WHERE text LIKE :t"), {"t": like}).scalar_one()
        )
    eng.dispose()
    return n


def test_outage(cluster: Cluster, base: str, seconds: float) -> bool:
    tag = f"故障{int(time.time()) % 100000}"
    sent: list[tuple[int, str, float]] = []
    msg_id = int(time.time() * 1000)
    print(
        f"(a) stopping the database for {seconds:.0f} s while sending WeChat messages and leaving a message"
    )
    session = httpx.post(base + "/api/v1/sessions", json={}, timeout=10).json()["session"]
    key = f"outage-{time.time_ns()}"
    ticket = {
        "session": session,
        "question": f"故障期间的留言 {tag}",
        "phone": "13812345678",
        "consent": True,
        "idempotency_key": key,
    }
    cluster.stop()
    time.sleep(1)
    codes = []
    for _ in range(3):  # the citizen submits, then (unsure) twice more
        t0 = time.monotonic()
        r = httpx.post(base + "/api/v1/tickets", json=ticket, timeout=10)
        codes.append((r.status_code, round(time.monotonic() - t0, 2)))
    t_end = time.monotonic() + seconds
    i = 0
    with ThreadPoolExecutor(4) as pool:
        while time.monotonic() < t_end:
            futs = [
                pool.submit(
                    wechat_request,
                    base,
                    f"oFault{(i + k) % 50:04d}" + "y" * 20,
                    msg_id + i + k,
                    f"{QUESTIONS[(i + k) % len(QUESTIONS)]} {tag}",
                )
                for k in range(4)
            ]
            sent.extend(f.result() for f in futs)
            i += 4
            time.sleep(0.2)
    cluster.start()
    slow = [s for s in sent if s[0] != 200 or s[2] > 5.0]
    answered = sum(1 for s in sent if s[1] != "success")
    apologies = sum(1 for s in sent if "系统暂时繁忙" in s[1])
    slow += [s for s in sent if "系统暂时繁忙" in s[1]]
    print(
        f"    {len(sent)} messages, {answered} answered with XML ({apologies} apologies), the rest 'success'; "
        f"max {max(s[2] for s in sent):.2f} s; bad or slow: {len(slow)}"
    )
    deadline = time.monotonic() + 60
    n = 0
    while time.monotonic() < deadline:
        try:
            n = count_log(cluster.url, f"%{tag}%")
        except Exception:
            n = 0
        if n >= len(sent):
            break
        time.sleep(1)
    print(f"    query log after the database returned: {n} of {len(sent)} messages")
    from sqlalchemy import create_engine, text

    tickets = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        eng = create_engine(cluster.url)
        with eng.connect() as c:
            tickets = int(
                c.execute(
                    text("SELECT count(*) FROM ticket WHERE idempotency_key = :k"), {"k": key}
                ).scalar_one()
            )
        eng.dispose()
        if tickets:
            break
        time.sleep(1)
    print(f"    message left during the outage: answers {codes} (status, s); tickets after it: {tickets}")
    return not slow and n == len(sent) and all(c == 202 for c, _ in codes) and tickets == 1


def test_kill_during_ticket(base: str, proc: subprocess.Popen[bytes], url: str) -> bool:
    print("(b) kill -9 of a worker during POST /api/v1/tickets, then the client's retry")
    session = httpx.post(base + "/api/v1/sessions", json={}, timeout=10).json()["session"]
    key = f"idem-{time.time_ns()}"
    body = {"session": session, "question": "故障测试：工伤认定需要多长时间？", "idempotency_key": key}
    # which workers exist: the children of the uvicorn supervisor
    kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    results: list[int] = []

    def send() -> None:  # a client retrying the same submission; the kill lands among these
        for _ in range(15):
            try:
                results.append(
                    httpx.post(
                        base + "/api/v1/tickets", json=body, timeout=10, headers={"Connection": "close"}
                    ).status_code
                )
            except httpx.HTTPError:
                results.append(0)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    victim = kids[0] if kids else None
    if victim:
        os.kill(int(victim), signal.SIGKILL)
    for t in threads:
        t.join()
    final = None
    for _ in range(50):  # the client retries until it gets an answer
        try:
            r = httpx.post(base + "/api/v1/tickets", json=body, timeout=10)
            if r.status_code == 200:
                final = r.json()["ticket_no"]
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.connect() as c:
        n = int(
            c.execute(text("SELECT count(*) FROM ticket WHERE idempotency_key = :k"), {"k": key}).scalar_one()
        )
    eng.dispose()
    print(
        f"    killed worker {victim}; attempts during the kill: {len(results)}, "
        f"{results.count(200)} answered, {results.count(0)} cut off; retry -> {final}; tickets with the key: {n}"
    )
    return final is not None and n == 1


def test_graceful(base: str, proc: subprocess.Popen[bytes]) -> bool:
    """Requests sent before SIGTERM must all be answered; ones sent after it may be refused or
    cut off unanswered (the listener closes; a load balancer sends them elsewhere)."""
    print("(c) SIGTERM with requests in flight")
    session = httpx.post(base + "/api/v1/sessions", json={}, timeout=10).json()["session"]
    results: list[tuple[float, str]] = []  # (sent at, outcome)
    stop = threading.Event()

    def send(i: int) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                r = httpx.post(
                    base + "/api/v1/chat",
                    json={"session": session, "text": QUESTIONS[i % 5]},
                    timeout=15,
                    headers={"Connection": "close"},
                )
                results.append((sent, "ok" if r.status_code == 200 else f"status {r.status_code}"))
            except httpx.HTTPError as exc:
                results.append((sent, type(exc).__name__))
                return

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join()
    before = [o for at, o in results if at < signalled]
    after = [o for at, o in results if at >= signalled]
    lost = [o for o in before if o != "ok"]
    print(
        f"    {len(before)} requests sent before SIGTERM: {before.count('ok')} answered, lost {lost}; "
        f"{len(after)} sent after it: {after.count('ok')} answered, the rest refused/closed; exit code {code}"
    )
    return not lost and len(before) > 0 and code == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the database is stopped (CI: 20)")
    args = ap.parse_args()
    if not (PG_BIN / "initdb").exists():
        print(f"PostgreSQL server binaries not found in {PG_BIN}; skipped")
        return 0
    root = Path(tempfile.mkdtemp(prefix="policybot-fault-"))
    cluster = Cluster(root)
    cluster.start()
    proc = None
    try:
        proc, base = serve(root, cluster.url)
        results = {
            "outage": test_outage(cluster, base, args.outage),
            "kill -9": test_kill_during_ticket(base, proc, cluster.url),
            "SIGTERM drain": test_graceful(base, proc),
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        cluster.stop()
        log = (root / "server.log").read_text(errors="replace")
        Path(tempfile.gettempdir(), "policybot-fault-server.log").write_text(log)
        shutil.rmtree(root, ignore_errors=True)
    print("server log: {} lines with Traceback".format(log.count("Traceback")))
    for name, ok in results.items():
        print(f"{name:<14} {'OK' if ok else 'FAILED'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
