"""HTTP hardening (bot/security.py): security headers on every kind of response, the strict CORS
allow-list of the widget API, the console IP allow-list behind trusted proxies, masking on uvicorn's
own loggers and in the CLI, settings validation."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bot.app import create_app
from bot.security import AccessArgsMaskingFilter, install_all_log_masking
from bot.settings import Settings
from tests.bot.conftest import make_settings

PHONE = "13812345678"


def test_headers_on_api_static_demo_docs_and_errors(client: TestClient) -> None:
    api = client.post("/api/v1/chat", json={"text": "依申请公开多长时间答复"})
    static = client.get("/static/widget.js")
    page = client.get("/")
    docs = client.get("/docs")
    missing = client.get("/nope")
    bad = client.post("/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    too_big = client.post("/api/v1/chat", content=b"x" * 70_000, headers={"content-type": "application/json"})
    for r in (api, static, page, docs, missing, bad, too_big):
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    assert (api.status_code, bad.status_code, too_big.status_code) == (200, 422, 413)
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert api.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "cdn.jsdelivr.net" not in docs.headers["content-security-policy"]
    assert "strict-transport-security" not in api.headers  # plain HTTP


def test_console_keeps_its_own_stricter_headers(client: TestClient) -> None:
    r = client.get("/console/login")
    assert r.headers["content-security-policy"].startswith("default-src 'self'; frame-ancestors 'none'")
    assert r.headers["referrer-policy"] == "same-origin"  # set by the console, not replaced


def test_hsts_over_https(demo_url: str) -> None:
    with TestClient(create_app(make_settings(demo_url)), base_url="https://bot.example.gov.cn") as c:
        assert c.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_cors_preflight_allowed_and_refused(demo_url: str) -> None:
    app = create_app(make_settings(demo_url, cors_origins=["https://www.example.gov.cn"]))
    with TestClient(app) as c:
        ok = c.options(
            "/api/v1/chat",
            headers={
                "Origin": "https://www.example.gov.cn",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://www.example.gov.cn"
        assert "access-control-allow-credentials" not in ok.headers
        evil = c.options(
            "/api/v1/chat",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        odd_header = c.options(
            "/api/v1/chat",
            headers={
                "Origin": "https://www.example.gov.cn",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-secret",
            },
        )
        assert odd_header.status_code == 400
        simple = c.post("/api/v1/chat", json={"text": "你好"}, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in simple.headers  # the browser hides the answer


def test_cors_origins_must_be_exact_origins() -> None:
    for bad in (["*"], ["https://a.example.cn/path"], ["a.example.cn"]):
        with pytest.raises(ValidationError):
            Settings(cors_origins=bad)
    assert Settings(cors_origins=["https://a.example.cn/"]).cors_origins == ["https://a.example.cn"]


def test_console_ip_allowlist_with_trusted_proxy(demo_url: str) -> None:
    settings = make_settings(
        demo_url, console_ip_allowlist=["10.1.0.0/16", "192.168.7.7"], trusted_proxies=["127.0.0.0/8"]
    )
    with TestClient(create_app(settings)) as c:
        refused = c.get("/console/login")  # peer "testclient", not in the list
        assert refused.status_code == 403 and "无权访问" in refused.text
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert c.get("/board").status_code == 200  # the public board is not behind the list
        # nor are the board's stylesheet and scripts (under /console/static) or the favicon
        assert c.get("/console/static/console.css").status_code == 200
        assert c.get("/console/static/console.js").status_code == 200
        assert c.get("/favicon.ico").status_code == 200
        assert c.post("/api/v1/sessions", json={}).status_code == 200
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as c:
        assert c.get("/console/login", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
        assert c.get("/console/login", headers={"X-Forwarded-For": "192.168.7.7"}).status_code == 200
        assert c.get("/console/login", headers={"X-Forwarded-For": "10.2.0.1"}).status_code == 403
        # a forged hop to the left of the real client is ignored
        assert c.get("/console/login", headers={"X-Forwarded-For": "10.1.2.3, 8.8.8.8"}).status_code == 403
    with TestClient(
        create_app(make_settings(demo_url, console_ip_allowlist=["10.1.0.0/16"])), client=("127.0.0.1", 5000)
    ) as c:  # untrusted peer: X-Forwarded-For is not believed
        assert c.get("/console/login", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 403


def test_console_ip_allowlist_setting_is_validated() -> None:
    with pytest.raises(ValidationError):
        Settings(console_ip_allowlist=["10.0.0.0/33"])
    assert Settings(console_ip_allowlist=[" 10.0.0.0/8 "]).console_ip_allowlist == ["10.0.0.0/8"]


def test_uvicorn_loggers_are_masked() -> None:
    """uvicorn's access log keeps its argument tuple (its formatter needs it), with the path masked
    and widget session ids redacted; its error logger is masked like the root logger."""
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.logging import AccessFormatter, DefaultFormatter

    access, error = logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn")
    saved = [(lg, lg.handlers[:], lg.filters[:], lg.propagate, lg.level) for lg in (access, error)]
    out = io.StringIO()
    try:
        for lg, fmt in (
            (access, AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"])),
            (error, DefaultFormatter("%(message)s")),
        ):
            handler = logging.StreamHandler(out)
            handler.setFormatter(fmt)
            lg.handlers, lg.filters, lg.propagate = [handler], [], False
            lg.setLevel(logging.INFO)
        install_all_log_masking()
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "1.2.3.4:5",
            "GET",
            f"/board?q={PHONE}&session=eyJhbGciOi.secret",
            "1.1",
            200,
        )
        logging.getLogger("uvicorn.error").error("client %s sent 110101199003074514", PHONE)
    finally:
        for lg, handlers, filters, propagate, level in saved:
            lg.handlers, lg.filters, lg.propagate = handlers, filters, propagate
            lg.setLevel(level)
    text = out.getvalue()
    assert "GET /board?q=138****5678&session=[redacted] HTTP/1.1" in text
    assert PHONE not in text and "110101199003074514" not in text and "secret" not in text


def test_access_filter_leaves_other_records_masked() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "x", 1, "odd %s", (PHONE,), None)
    AccessArgsMaskingFilter().filter(record)
    assert record.getMessage() == "odd 138****5678"


def test_cli_logs_are_masked(tmp_path: Path) -> None:
    """A CLI command's warnings go to stderr through the masking filter (not the last-resort handler)."""
    code = (
        "import logging, sys\n"
        "import bot.cli as cli\n"
        "def ask(args, ctx):\n"
        f"    logging.getLogger('policybot.test').warning('citizen {PHONE} asked')\n"
        "    return 0\n"
        "parser = cli.build_parser()\n"
        "parser._subparsers._group_actions[0].choices['ask'].set_defaults(func=ask)\n"
        "cli.build_parser = lambda: parser\n"
        "sys.exit(cli.main(['ask', 'x']))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "citizen 138****5678 asked" in res.stderr and PHONE not in res.stderr
