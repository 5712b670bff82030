"""HTTP plumbing shared by the console and the board: the Jinja2 environment (autoescaped), the
route class that adds security headers and turns errors into Chinese HTML pages, CSRF tokens (per
session for staff, a signed double-submit cookie for the login form and the public board) with an
Origin/Referer check, and the role guard dependency. The client IP is `handoff.clientip`'s.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, Signer

from handoff.clientip import client_ip  # re-exported: the console's and the board's client IP
from handoff.console.auth import Accounts, User
from handoff.console.config import ConsoleConfig
from knowledge.errors import Conflict, NotFound, PolicybotError
from knowledge.models import CHINA_TZ

HERE = Path(__file__).resolve().parent
STATIC_FILES: Final = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
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


def safe_next(value: str | None) -> str:
    """Only local console paths are followed after login (no open redirect)."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


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


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of one request."""

    user: User
    csrf: str
    ip: str


class Guard:
    """Builds the FastAPI dependencies that admit only given roles; records the route's roles."""

    def __init__(self, accounts: Accounts, config: ConsoleConfig) -> None:
        self.accounts = accounts
        self.config = config
        self.route_roles: dict[tuple[str, str], frozenset[str]] = {}

    def __call__(self, *roles: str) -> Callable[[Request], Awaitable[Staff]]:
        allowed = frozenset(roles)

        async def dependency(request: Request) -> Staff:
            signed = self.accounts.session(request.cookies.get(self.config.session_cookie))
            if signed is None:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    raise Redirect("/console/login?next=" + quote(safe_next(target), safe="/"))
                raise HTTPException(403, "登录已过期，请重新登录")
            request.state.console_user = signed.user
            if signed.user.role not in allowed:
                raise HTTPException(403, "您的账号无权访问此页面")
            if request.method not in ("GET", "HEAD"):
                if not origin_ok(request, self.config):
                    raise HTTPException(403, "请求来源不正确，请从本站页面提交")
                form = await request.form()
                submitted = form.get("csrf")
                if not isinstance(submitted, str) or not hmac.compare_digest(submitted, signed.csrf):
                    raise HTTPException(403, "页面已过期，请刷新后重新提交")
                if any(not isinstance(v, str) for _, v in form.multi_items()):
                    raise HTTPException(400, "不接受上传文件")
            return Staff(signed.user, signed.csrf, client_ip(request, self.config.trusted_proxies))

        return dependency


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


__all__ = [
    "SECURITY_HEADERS",
    "STATIC_FILES",
    "ConsoleRoute",
    "Guard",
    "PreCsrf",
    "Redirect",
    "Staff",
    "client_ip",
    "error_page",
    "origin_ok",
    "render",
    "safe_next",
    "templates",
]
