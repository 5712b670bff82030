"""No log line and no `access_log` row gives away what would let someone act as a citizen: WeChat's
signed URL parameters (signature, msg_signature, nonce, openid, echostr), the widget session id, or
personal data in a path. Checked on a real `policybot serve` process (uvicorn's own access log) and
on the filter itself."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import httpx

from bot.security import RedactingFilter, redact
from tests.serving import clean_env, serve

SIGNATURE = "6b392d5fcef9f62860ff0a27f7c38fe21422280a"
MSG_SIGNATURE = "0123456789abcdef0123456789abcdef01234567"
NONCE = "1915853367"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
PHONE = "13812345678"
ID_NO = "310115198001011238"


def test_redact_secret_parameters_and_personal_data() -> None:
    line = (
        f'1.2.3.4:5 - "POST /wechat?signature={SIGNATURE}&timestamp=1796155392&nonce={NONCE}'
        f'&openid={OPENID}&encrypt_type=aes&msg_signature={MSG_SIGNATURE}&echostr=abc HTTP/1.1" 200'
    )
    out = redact(line)
    for secret in (SIGNATURE, NONCE, OPENID, MSG_SIGNATURE, "echostr=abc"):
        assert secret not in out
    assert "timestamp=1796155392" in out and "encrypt_type=aes" in out
    assert redact(f"/api/v1/tickets/{PHONE}") == "/api/v1/tickets/138****5678"
    assert ID_NO not in redact(f"/board/{ID_NO}")
    assert redact("GET /widget?session=eyJ1Ijo.x.y") == "GET /widget?session=[redacted]"
    assert (
        redact("POST https://api.telegram.org/bot123456:ABC-def_1/sendMessage")
        == "POST https://api.telegram.org/bot[redacted]/sendMessage"
    )


def test_filter_on_ordinary_records() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, "x", 1, "HTTP Request: %s", (f"/wechat?nonce={NONCE}",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: /wechat?nonce=[redacted]"


def test_real_server_logs_and_access_log_table_are_redacted(tmp_path: Path) -> None:
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'policybot.db'}",
        POLICYBOT_SECRET_KEY="k" * 40,
        POLICYBOT_WECHAT_TOKEN="policybotToken2024",
    )
    quiet = logging.getLogger("httpx")  # this test's own client would log the clear URLs
    quiet.disabled = True
    try:
        _requests(tmp_path, env)
    finally:
        quiet.disabled = False
    text = (tmp_path / "serve.log").read_text(errors="replace")
    assert "/wechat?" in text  # uvicorn's access lines are there ...
    for secret in (SIGNATURE, MSG_SIGNATURE, NONCE, OPENID, "8842310987654", PHONE, ID_NO, "secretpart"):
        assert secret not in text, secret  # ... without anything that acts for a citizen
    with sqlite3.connect(tmp_path / "policybot.db") as db:
        paths = [p for (p,) in db.execute("SELECT path FROM access_log")]
    assert "/api/v1/tickets/138****5678" in paths
    assert not any(PHONE in p or ID_NO in p or "?" in p for p in paths), paths


def _requests(tmp_path: Path, env: dict[str, str]) -> None:
    with serve([], cwd=tmp_path, env=env, log_level="info") as (_, base):
        params = {
            "signature": SIGNATURE,
            "timestamp": str(int(time.time())),
            "nonce": NONCE,
            "openid": OPENID,
            "encrypt_type": "aes",
            "msg_signature": MSG_SIGNATURE,
            "echostr": "8842310987654",
        }
        httpx.get(base + "/wechat", params=params, timeout=10)
        httpx.post(base + "/wechat", params=params, content=b"<xml/>", timeout=10)
        httpx.get(f"{base}/api/v1/tickets/{PHONE}", timeout=10)
        httpx.get(f"{base}/board/{ID_NO}", timeout=10)
        httpx.get(f"{base}/api/v1/messages", params={"session": "eyJ1IjoiYWJjIn0.secretpart"}, timeout=10)
        time.sleep(1.5)  # the access-log writer flushes every second
