"""Load benchmark of the WeChat endpoint: starts `policybot serve --demo --workers N` on a free
loopback port with a temporary SQLite database, the channel in safe mode (AES), then drives it from
a thread pool of httpx clients with encrypted, signed text messages (distinct MsgIds and users,
questions from the demo knowledge base) for a fixed duration. Every reply is decrypted and checked.
It prints requests/s, p50/p99 latency and errors next to a baseline measured in the same run
(GET /healthz with the same generator) and a WeChat scenario without the knowledge-base lookup
(image messages: signature, decryption, dedup, session and reply rendering only), so that the cost
of the channel and of the answer are told apart. Exits non-zero when the targets are missed.

    python bench/wechat_load.py [--seconds 15] [--threads 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

TOKEN = "benchToken"
APP_ID = "wx_bench_app"
AES_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")
ACCOUNT = "gh_bench000001"
QUESTIONS = [
    "依申请公开多久答复", "人社局主动公开信息遵循什么原则", "政策文件出台时会同步发布解读吗",
    "政策解读材料一般会讲清楚哪些内容", "申请政府信息公开要多少天", "社保卡丢了怎么办", "你好",
    "我家楼下的共享单车乱停放谁来管",
]
TARGET_RPS = 200.0
TARGET_P99_MS = 200.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, ok: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if not ok:
                self.errors += 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(threads: int, seconds: float, make_request: object) -> tuple[Result, float]:
    result = Result()
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        with httpx.Client(timeout=10.0) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    ok = make_request(client, n)  # type: ignore[operator]
                except httpx.HTTPError:
                    ok = False
                result.add(time.perf_counter() - t0, ok)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return result, time.monotonic() - started


def report(name: str, result: Result, elapsed: float) -> tuple[float, float]:
    n = len(result.latencies)
    rps = n / elapsed if elapsed else 0.0
    p50 = percentile(result.latencies, 0.50) * 1000
    p99 = percentile(result.latencies, 0.99) * 1000
    mean = statistics.fmean(result.latencies) * 1000 if n else float("nan")
    print(f"{name:<28} {n:>7} {rps:>9.1f} {p50:>9.1f} {p99:>9.1f} {mean:>9.1f} {result.errors:>7}")
    return rps, p99


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    ids = itertools.count(int(time.time() * 1000))
    id_lock = threading.Lock()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "POLICYBOT_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
               "POLICYBOT_WECHAT_TOKEN": TOKEN, "POLICYBOT_WECHAT_APP_ID": APP_ID,
               "POLICYBOT_WECHAT_AES_KEY": AES_KEY, "POLICYBOT_RATE_LIMIT_PER_IP": "0"}
        env.pop("DATABASE_URL", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--demo", "--workers", str(args.workers), "--port", str(port),
             "--log-level", "warning"],
            env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if server.poll() is not None:
                    print(server.stderr.read().decode() if server.stderr else "", file=sys.stderr)
                    raise SystemExit("server exited during start-up")
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready")
                time.sleep(0.2)
            # warm both workers (index load, jieba)
            for _ in range(40):
                httpx.get(base + "/healthz", timeout=5)

            def healthz(client: httpx.Client, n: int) -> bool:
                return client.get(base + "/healthz").status_code == 200

            def wechat(client: httpx.Client, n: int, kind: str = "text") -> bool:
                with id_lock:
                    msg_id = next(ids)
                user = f"oBench{n:04d}{random.randrange(100):02d}" + "x" * 16
                ts, nonce = str(int(time.time())), str(random.randrange(10**9))
                xml = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]>"
                       f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                       f"<Content><![CDATA[{random.choice(QUESTIONS)}]]></Content><MsgId>{msg_id}</MsgId></xml>")
                if kind == "image":  # the whole WeChat path (crypto, dedup, render) without a KB lookup
                    xml = xml.replace("[CDATA[text]]", "[CDATA[image]]")
                envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
                params = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": user,
                          "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
                body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
                resp = client.post(base + "/wechat", params=params, content=body.encode())
                if resp.status_code != 200 or resp.text == "success":
                    return False
                reply = xmltodict.parse(resp.text)["xml"]
                plain = crypto.decrypt_message(resp.text, reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"])
                return "<Content>" in plain

            print(f"policybot serve --workers {args.workers}, {args.threads} client threads, loopback, SQLite")
            print(f"{'scenario':<28} {'requests':>7} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} "
                  f"{'errors':>7}")
            base_res, base_elapsed = run_load(args.threads, args.baseline_seconds, healthz)
            report("baseline GET /healthz", base_res, base_elapsed)
            res, elapsed = run_load(args.threads, args.seconds, wechat)
            rps, p99 = report("WeChat text (safe mode)", res, elapsed)
            img_res, img_elapsed = run_load(args.threads, args.baseline_seconds,
                                            lambda c, n: wechat(c, n, "image"))
            report("WeChat image (no KB lookup)", img_res, img_elapsed)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    ok = rps >= TARGET_RPS and p99 < TARGET_P99_MS and res.errors == 0
    print(f"target: >= {TARGET_RPS:.0f} req/s, p99 < {TARGET_P99_MS:.0f} ms, no errors -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
