"""Fuzzes the WeChat entry (POST/GET /wechat: size cap, signature and freshness checks, AES
envelope, XML parsing, dedup, the conversation) with hypothesis, in-process on a demo knowledge base:
random bytes, mutated valid messages (plain and safe mode), valid envelopes around random XML,
random query strings and signatures, and huge numbers in valid signed messages (CreateTime and MsgId
of up to 400 digits, plain and encrypted, and a signed 400-digit timestamp; the 400-digit cases are
always sent first). Asserts that no request gets a 5xx and that memory stays bounded (RSS growth
after a warm-up under --max-growth-mb). Not part of the normal test run.

    python bench/fuzz_wechat.py [--examples 3000] [--max-growth-mb 64]
    python bench/fuzz_wechat.py --examples 20   # a short run
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TOKEN, APP_ID, ACCOUNT = "fuzzToken", "wxfuzzapp", "gh_fuzz0001"
AES_KEY = base64.b64encode(bytes(range(40, 72))).decode().rstrip("=")
QUESTIONS = [
    "依申请公开多久答复",
    "你好",
    "留言",
    "查询 LY20261123-0001",
    "同意 张三 13812345678",
    "1",
    "有用",
]


def message_xml(kind: str, text: str, msg_id: int | str, user: str, ts: int | str) -> str:
    body = {
        "text": f"<Content><![CDATA[{text}]]></Content>",
        "event": "<Event><![CDATA[subscribe]]></Event>",
        "image": "<PicUrl><![CDATA[http://127.0.0.1/x.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>",
    }[kind]
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}<MsgId>{msg_id}</MsgId></xml>"
    )


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:
            buf[i] = value
        elif kind == 1:
            del buf[i]
        elif kind == 2:
            buf.insert(i, value)
        else:
            buf[i:i] = buf[max(0, i - 8) : i]  # duplicate a slice
    return bytes(buf)


mutations = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 255)), max_size=12)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=3000, help="cases per strategy (default 3000)")
    ap.add_argument("--max-growth-mb", type=float, default=64.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    os.environ["POLICYBOT_JOBS_ENABLED"] = "false"
    from fastapi.testclient import TestClient
    from fuzz_api import build_app

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    counter = iter(range(10**6, 10**9))
    errors: list[str] = []
    statuses: dict[int, int] = {}

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"POLICYBOT_WECHAT_AES_KEY": AES_KEY})
        app = build_app(Path(tmp))
        # safe mode needs the AES key and AppID on the channel: rebuild with them
        from bot.app import create_app

        settings = app.state.settings.model_copy(update={"wechat_aes_key": AES_KEY, "wechat_app_id": APP_ID})
        app = create_app(settings)
        client = TestClient(app, raise_server_exceptions=False)  # a 500 is counted, not raised
        client.__enter__()

        def post(query: dict[str, str], body: bytes) -> None:
            r = client.post("/wechat", params=query, content=body, headers={"content-type": "text/xml"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                errors.append(f"{r.status_code} query={query!r} body={body[:200]!r}")

        def valid(
            kind: str,
            text: str,
            encrypted: bool,
            *,
            create_time: str | None = None,
            msg_id: str | None = None,
            ts: str | None = None,
        ) -> tuple[dict[str, str], bytes]:
            """A correctly signed message; `create_time`, `msg_id` (in the XML) and `ts` (the signed
            query timestamp) replace the current values."""
            ts, nonce = ts or str(int(time.time())), str(next(counter))
            xml = message_xml(
                kind,
                text,
                msg_id or next(counter),
                "oFuzz" + str(next(counter) % 97).zfill(4) + "x" * 20,
                create_time or ts,
            )
            query = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
            if not encrypted:
                return query, xml.encode()
            import xmltodict

            env = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
            query.update(encrypt_type="aes", msg_signature=env["MsgSignature"])
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{env['Encrypt']}]]></Encrypt></xml>"
            return query, body.encode()

        common = settings_for(args.examples)

        @common
        @given(
            body=st.binary(max_size=4096),
            query=st.dictionaries(
                st.sampled_from(
                    ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "openid"]
                ),
                st.text(max_size=80),
                max_size=6,
            ),
        )
        def random_bytes(body: bytes, query: dict[str, str]) -> None:
            post(query, body)

        @common
        @given(
            kind=st.sampled_from(["text", "event", "image"]),
            text=st.sampled_from(QUESTIONS) | st.text(max_size=300),
            encrypted=st.booleans(),
            ops=mutations,
            mutate_query=st.booleans(),
        )
        def mutated(
            kind: str, text: str, encrypted: bool, ops: list[tuple[int, int, int]], mutate_query: bool
        ) -> None:
            query, body = valid(kind, text, encrypted)
            if mutate_query and "msg_signature" in query:
                query["msg_signature"] = mutate(query["msg_signature"].encode(), ops[:2]).decode(
                    errors="replace"
                )
            post(query, mutate(body, ops))

        @common
        @given(
            inner=st.binary(max_size=2048) | st.text(max_size=2048).map(str.encode),
            encrypted_garbage=st.booleans(),
        )
        def signed_envelope(inner: bytes, encrypted_garbage: bool) -> None:
            """Correctly signed and encrypted envelopes around arbitrary plaintext (or arbitrary
            base64 as the ciphertext): everything after the signature check."""
            ts, nonce = str(int(time.time())), str(next(counter))
            if encrypted_garbage:
                encrypt = base64.b64encode(inner).decode()
            else:
                text = inner.decode(errors="replace")
                encrypt = _encrypt(crypto, text)
            query = {
                "signature": sign(TOKEN, ts, nonce),
                "timestamp": ts,
                "nonce": nonce,
                "encrypt_type": "aes",
                "msg_signature": sign(TOKEN, ts, nonce, encrypt),
            }
            post(query, f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode())

        @common
        @given(
            field=st.sampled_from(["create_time", "msg_id", "ts"]),
            digits=st.integers(19, 400),
            sign_=st.sampled_from(["", "-", "+", "0"]),
            encrypted=st.booleans(),
            kind=st.sampled_from(["text", "event", "image"]),
        )
        def huge_numbers(field: str, digits: int, sign_: str, encrypted: bool, kind: str) -> None:
            """Numbers far beyond int64 where WeChat sends integers, in otherwise valid signed messages."""
            post(*valid(kind, "你好", encrypted, **{field: sign_ + "9" * digits}))

        @common
        @given(
            query=st.dictionaries(
                st.sampled_from(["signature", "timestamp", "nonce", "echostr"]),
                st.text(max_size=600),
                max_size=4,
            )
        )
        def verify(query: dict[str, str]) -> None:
            r = client.get("/wechat", params=query)
            if r.status_code >= 500:
                errors.append(f"GET {r.status_code} {query!r}")

        started = time.monotonic()
        for encrypted in (False, True):  # the 400-digit cases, every run
            for field in ("create_time", "msg_id", "ts"):
                post(*valid("text", "依申请公开多久答复", encrypted, **{field: "9" * 400}))
        random_bytes()
        warm = rss_mb()
        for fn in (mutated, signed_envelope, huge_numbers, verify, random_bytes):
            t0 = time.monotonic()
            fn()
            print(
                f"{fn.__name__:<18} {args.examples:>6} cases  {time.monotonic() - t0:6.1f} s  max RSS {rss_mb():7.1f} MB",
                flush=True,
            )
        client.__exit__(None, None, None)
    growth = rss_mb() - warm
    print(
        f"statuses: {dict(sorted(statuses.items()))}; {time.monotonic() - started:.0f} s; "
        f"RSS growth after warm-up {growth:.1f} MB (limit {args.max_growth_mb:.0f})"
    )
    for e in errors[:20]:
        print(e)
    ok = not errors and growth <= args.max_growth_mb
    print("server errors:", len(errors), "->", "OK" if ok else "FAILED")
    return 0 if ok else 1


def _encrypt(crypto: WeChatCrypto, text: str) -> str:
    """The Encrypt field for plaintext `text` with this account's key (wechatpy's PrpCrypto)."""
    from wechatpy.crypto import PrpCrypto

    return str(PrpCrypto(crypto.key).encrypt(text, crypto._id))


def settings_for(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


if __name__ == "__main__":
    raise SystemExit(main())
