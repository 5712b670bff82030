"""HTTP plumbing shared by the console and the board: the Jinja2 environment (autoescaped), the
route class that adds security headers and turns errors into Chinese HTML pages, CSRF tokens (per
session for staff, a signed double-submit cookie for the login form and the public board) with an
Origin/Referer check. The client IP is `handoff.clientip`'s. The console's role guard is in `deps`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, Signer

from handoff.clientip import client_ip  # re-exported: the console's and the board's client IP
from handoff.console.config import ConsoleConfig
from knowledge.errors import Conflict, NotFound, PolicybotError
from knowledge.models import CHINA_TZ

HERE = Path(__file__).resolve().parent
STATIC_FILES: Final = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",  # the live count of new tickets
}

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(HERE / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def _local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(CHINA_TZ).strftime(fmt)


_env.filters["local"] = _local
templates = Jinja2Templates(env=_env)


class Redirect(Exception):
    """Raised by guards: answer with a 303 to `url`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {400: "请求有误", 403: "无权访问", 404: "未找到", 409: "操作冲突", 429: "请求过多"}
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": titles.get(status, "出错了"),
            "message": message,
            "status": status,
            "user": getattr(request.state, "console_user", None),
            "csrf": "",
            "notice": "",
            "error": "",
        },
        status_code=status,
    )


def _status_of(exc: PolicybotError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


class ConsoleRoute(APIRoute):
    """Every console/board response gets the security headers; errors become HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            response: Response
            try:
                response = await original(request)
            except Redirect as r:
                response = RedirectResponse(r.url, status_code=303)
            except HTTPException as e:
                response = error_page(request, e.status_code, str(e.detail))
            except RequestValidationError:
                response = error_page(request, 400, "请求参数不正确，请返回后重试")
            except PolicybotError as e:
                response = error_page(request, _status_of(e), e.user_message)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.url.path.startswith("/console/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
            pending = getattr(request.state, "set_pre_cookie", None)
            if pending is not None:
                name, value, secure = pending
                response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure, path="/")
            return response

        return handler


def origin_ok(request: Request, config: ConsoleConfig) -> bool:
    """POSTs must come from our own pages: Origin (or else Referer) names this host."""
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    if f"{parts.scheme}://{parts.netloc}" in config.allowed_origins:
        return True
    host = request.headers.get("host", "")
    return bool(parts.netloc) and parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class PreCsrf:
    """Anonymous CSRF: a random token in an HttpOnly cookie, its signature in the form."""

    def __init__(self, config: ConsoleConfig) -> None:
        self._config = config
        self._signer = Signer(config.secret_key, salt="policybot.console.pre-csrf")

    def form_token(self, request: Request) -> str:
        token = request.cookies.get(self._config.pre_cookie, "")
        if len(token) < 20:
            token = secrets.token_urlsafe(24)
            request.state.set_pre_cookie = (self._config.pre_cookie, token, self._config.cookie_secure)
        return self._signer.sign(token).decode()

    def check(self, request: Request, submitted: str | None) -> None:
        if not origin_ok(request, self._config):
            raise HTTPException(403, "请求来源不正确，请从本站页面提交")
        cookie = request.cookies.get(self._config.pre_cookie, "")
        try:
            signed = self._signer.unsign(submitted or "").decode()
        except BadSignature:
            signed = ""
        if not cookie or not signed or not hmac.compare_digest(cookie, signed):
            raise HTTPException(403, "页面已过期，请刷新后重新提交")


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


__all__ = [
    "SECURITY_HEADERS",
    "STATIC_FILES",
    "ConsoleRoute",
    "PreCsrf",
    "Redirect",
    "client_ip",
    "error_page",
    "origin_ok",
    "render",
    "templates",
]
