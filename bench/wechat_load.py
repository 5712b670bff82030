"""Load benchmark of the WeChat endpoint: `policybot serve --demo --workers N` on loopback with the
Official Account in safe mode (AES), driven by wrk with encrypted, signed text messages prepared
beforehand with wechatpy's own crypto (distinct MsgIds and users, questions from the demo knowledge
base; each request is sent once). Printed next to two references measured in the same run: GET
/healthz, and WeChat image messages (signature, decryption, dedup, session and reply rendering
without a knowledge-base lookup), so that the cost of the channel and of the answer are told apart.
Targets (issue 4): >= 200 req/s, p99 < 200 ms, no errors.

    python bench/wechat_load.py [--seconds 15] [--connections 8] [--workers 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import base64
import random
import time

import xmltodict
from loadgen import HEADER, run_wrk, serve
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

TOKEN = "benchToken"
APP_ID = "wx_bench_app"
AES_KEY = base64.b64encode(bytes(range(100, 132))).decode().rstrip("=")
ACCOUNT = "gh_bench000001"
QUESTIONS = [
    "依申请公开多久答复",
    "人社局主动公开信息遵循什么原则",
    "政策文件出台时会同步发布解读吗",
    "政策解读材料一般会讲清楚哪些内容",
    "申请政府信息公开要多少天",
    "社保卡丢了怎么办",
    "你好",
    "我家楼下的共享单车乱停放谁来管",
]
TARGET_RPS, TARGET_P99 = 200.0, 200.0
GOAL_RATIO, GOAL_P99 = 0.25, 100.0  # the pipeline issue: >= 25 % of the same run's /healthz, p99 <= 100 ms


def prepare(n: int, kind: str, first_id: int) -> list[tuple[str, str, str]]:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    out = []
    rnd = random.Random(first_id)
    for i in range(n):
        user = f"oBench{i % 500:04d}" + "x" * 18
        ts, nonce = str(int(time.time())), str(rnd.randrange(10**9))
        content = (
            f"<Content><![CDATA[{rnd.choice(QUESTIONS)}]]></Content>"
            if kind == "text"
            else ("<PicUrl><![CDATA[http://127.0.0.1/x.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId>")
        )
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{content}"
            f"<MsgId>{first_id + i}</MsgId></xml>"
        )
        envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
        signer = WeChatSigner()
        signer.add_data(TOKEN, ts, nonce)
        query = (
            f"signature={signer.signature}&timestamp={ts}&nonce={nonce}&openid={user}"
            f"&encrypt_type=aes&msg_signature={envelope['MsgSignature']}"
        )
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
        )
        out.append(("POST", f"/wechat?{query}", body))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    args = ap.parse_args()
    env = {
        "POLICYBOT_WECHAT_TOKEN": TOKEN,
        "POLICYBOT_WECHAT_APP_ID": APP_ID,
        "POLICYBOT_WECHAT_AES_KEY": AES_KEY,
        "POLICYBOT_RATE_LIMIT_PER_IP": "0",
    }
    base_id = int(time.time() * 1000)
    texts = prepare(int(args.seconds * 600), "text", base_id)  # more than can be sent: each MsgId once
    images = prepare(3000, "image", base_id + 10_000_000)
    with serve(args.workers, env, args.database_url) as base:
        print(
            f"policybot serve --demo --workers {args.workers}; wrk -c{args.connections}, loopback, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}, safe mode"
        )
        print(HEADER)
        ref = run_wrk(
            "baseline GET /healthz", base, [("GET", "/healthz", "")], seconds=5, connections=args.connections
        )
        print(ref.row())
        res = run_wrk(
            "WeChat text (safe mode)",
            base,
            texts,
            seconds=args.seconds,
            connections=args.connections,
            content_type="text/xml",
        )
        print(res.row())
        img = run_wrk(
            "WeChat image (no KB lookup)",
            base,
            images,
            seconds=5,
            connections=args.connections,
            content_type="text/xml",
        )
        print(img.row())
    ok = res.rps >= TARGET_RPS and res.p99_ms < TARGET_P99 and res.errors == 0
    ratio = res.rps / ref.rps
    print(f"WeChat text / baseline throughput ratio: {ratio:.2f} (pipeline goal >= {GOAL_RATIO:.2f})")
    print(
        f"target: >= {TARGET_RPS:.0f} req/s, p99 < {TARGET_P99:.0f} ms, no errors -> {'OK' if ok else 'MISSED'}; "
        f"pipeline goal: ratio >= {GOAL_RATIO:.2f}, p99 <= {GOAL_P99:.0f} ms at 32 connections -> "
        f"{'OK' if ratio >= GOAL_RATIO and res.p99_ms <= GOAL_P99 else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
