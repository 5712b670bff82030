"""The API docs (/docs, /redoc) are served from the app itself: their HTML names no other host, the
Swagger UI / ReDoc assets come from /static-docs, the inline start-up script is allowed by its hash
(no 'unsafe-inline' scripts), no page's Content-Security-Policy names a third-party host, and
POLICYBOT_API_DOCS=false switches /docs, /redoc and /openapi.json off (404)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from tests.bot.conftest import make_settings

# an absolute or scheme-relative URL in an attribute or a CSS url(): //host...
_URL = re.compile(r"""(?:https?:)?//([A-Za-z0-9.\-\[\]:]+)""")
_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)\"""")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_CSP_KEYWORDS = {"'self'", "'none'", "data:", "blob:", "'unsafe-inline'"}


def _csp_sources(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for directive in csp.split(";"):
        words = directive.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _third_party(csp: str) -> list[str]:
    """Every source in the policy that is not a keyword, a scheme this origin controls or a hash."""
    return [
        src
        for values in _csp_sources(csp).values()
        for src in values
        if src not in _CSP_KEYWORDS and not src.startswith("'sha256-")
    ]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_html_names_no_other_host(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    hosts = set(_URL.findall(r.text))
    assert hosts <= {"testserver"}, f"{path} loads from {hosts}"
    assert "cdn.jsdelivr.net" not in r.text and "fonts.googleapis.com" not in r.text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_assets_are_served_by_the_app(client: TestClient, path: str) -> None:
    assets = _ASSET.findall(client.get(path).text)
    assert assets and all(a.startswith("/static-docs/") for a in assets), assets
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert len(r.content) > 1000, asset
        if asset.endswith(".js"):
            assert "javascript" in r.headers["content-type"]
        elif asset.endswith(".css"):
            assert r.headers["content-type"].startswith("text/css")


def test_swagger_start_script_is_allowed_by_hash_not_unsafe_inline(client: TestClient) -> None:
    r = client.get("/docs")
    scripts = _INLINE_SCRIPT.findall(r.text)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    script_src = _csp_sources(r.headers["content-security-policy"])["script-src"]
    assert f"'sha256-{digest}'" in script_src
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/static-docs/swagger-ui-bundle.js",
        "/console/login",
        "/board",
        "/api/v1/chat",
        "/nope",
    ],
)
def test_csp_names_no_third_party_host(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code < 500
    csp = r.headers["content-security-policy"]
    assert not _third_party(csp), f"{path}: {csp}"
    assert "frame-ancestors 'none'" in csp


def test_api_docs_switched_off(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYBOT_API_DOCS", "false")
    settings = make_settings(demo_url)
    assert settings.api_docs is False
    with TestClient(create_app(settings)) as c:
        for path in (
            "/docs",
            "/redoc",
            "/openapi.json",
            "/docs/oauth2-redirect",
            "/static-docs/swagger-ui.css",
        ):
            assert c.get(path).status_code == 404, path
        assert c.get("/healthz").status_code == 200
        assert c.post("/api/v1/chat", json={"text": "你好"}).status_code == 200


def test_api_docs_on_by_default(client: TestClient) -> None:
    assert make_settings("sqlite://").api_docs is True
    assert "/api/v1/chat" in client.get("/openapi.json").json()["paths"]
