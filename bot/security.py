"""HTTP hardening shared by every route of the app: security headers on every response (API, static
files, the demo page, the API docs, error responses produced by middleware), the optional IP
allow-list of the staff console, and personal-data masking on every log handler of the process
(root, uvicorn's server and access loggers), so that nothing the service or the server writes to a
log carries a phone or ID number in clear.

Headers are only added when a route has not set its own (the console and the board set stricter
ones in handoff/console/web.py, the API docs pages theirs from `docs_csp`, which are never replaced).
No policy names a host other than this origin.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from handoff.privacy import MaskingFilter, install_log_masking, mask

# The API answers JSON: nothing in it may load or run anything, nor be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# HTML pages of our own (the demo page): scripts and styles from this origin only (the widget's
# script and its shadow-DOM stylesheet come from /static); inline styles allowed for the page's
# <style> block, never inline scripts.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The API docs (bot/apidocs.py): Swagger UI and ReDoc from this origin (/static-docs), no other host;
# Swagger UI's inline start-up script is allowed by its hash alone; ReDoc injects its styles and builds
# its search index in a blob: worker.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
HSTS = b"max-age=31536000; includeSubDomains"
_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # query strings carry widget session ids
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
_NO_STORE_PREFIXES = ("/api/", "/wechat", "/telegram")


class SecurityHeaders:
    """ASGI middleware: adds the security headers to every HTTP response that lacks them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _COMMON:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", _csp_for(headers).encode()))
                if b"cache-control" not in present and path.startswith(_NO_STORE_PREFIXES):
                    headers.append((b"cache-control", b"no-store"))
                if https and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def docs_csp(html: str) -> str:
    """The policy of an API docs page: its inline scripts (`<script>` without attributes) by hash."""
    digests = (hashlib.sha256(script.encode()).digest() for script in _INLINE_SCRIPT.findall(html))
    return _DOCS_CSP.format(hashes="".join(f" 'sha256-{base64.b64encode(d).decode()}'" for d in digests))


def _csp_for(headers: list[tuple[bytes, bytes]]) -> str:
    content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
    return PAGE_CSP if content_type.startswith(b"text/html") else API_CSP


# --- console IP allow-list -----------------------------------------------------------------------
def parse_networks(values: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """CIDRs or single addresses ("10.0.0.0/8", "192.168.1.7"); raises ValueError on a bad entry."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


FORBIDDEN_PAGE = (
    '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>无权访问</title></head>'
    "<body><h1>无权访问</h1><p>工作台仅限单位内部网络访问。如需访问，请联系系统管理员。</p></body></html>"
).encode()


class ConsoleIpAllowlist:
    """ASGI middleware: /console is served only to client IPs inside the allow-list (403 otherwise),
    but for its static files (console.css and console.js, which the public board uses too).

    `client_ip` resolves the address as the rate limiter does (X-Forwarded-For only from trusted
    proxies). An empty allow-list admits everyone.
    """

    def __init__(
        self,
        app: Any,
        *,
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
        client_ip: Callable[[dict[str, Any]], str],
        prefix: str = "/console",
    ) -> None:
        self.app = app
        self.networks = networks
        self.client_ip = client_ip
        self.prefix = prefix

    def allowed(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        # the stylesheet and script under /console/static also style the public board: not refused
        if (
            self.networks
            and (path == self.prefix or path.startswith(self.prefix + "/"))
            and not _static_file(path, self.prefix)
        ):
            addr = self.client_ip(scope)
            if not self.allowed(addr):
                logging.getLogger("policybot.security").warning(
                    "console_ip_refused ip=%s path=%s", addr, path[:100]
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(FORBIDDEN_PAGE)).encode()),
                            (b"cache-control", b"no-store"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": FORBIDDEN_PAGE})
                return
        await self.app(scope, receive, send)


def _static_file(path: str, prefix: str) -> bool:
    """`prefix`/static/<one file name> (no further path, no dot segment)."""
    name = path[len(prefix) + len("/static/") :]
    return path.startswith(prefix + "/static/") and bool(name) and "/" not in name and ".." not in name


# --- log masking on every handler ----------------------------------------------------------------
# URL parameters that authenticate a request or name a user: WeChat's signature, msg_signature,
# nonce, openid and echostr (anyone holding a fresh signed triple could post as that user), the
# widget session id, and tokens and secrets of outbound API calls.
SECRET_PARAMS = (
    "signature",
    "msg_signature",
    "nonce",
    "openid",
    "echostr",
    "session",
    "access_token",
    "secret",
    "appsecret",
)
_SECRET_PARAM = re.compile(r"((?:^|[?&;\s])(?:" + "|".join(SECRET_PARAMS) + r")=)[^&\s\"']+", re.IGNORECASE)
_BOT_TOKEN = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")  # Telegram Bot API URLs carry the token in the path


def redact(text: str) -> str:
    """A log line or request target with personal data masked and the secret parameters above
    (and Telegram bot tokens) replaced by ``[redacted]``. The one redaction for every log line,
    uvicorn's access log and the `access_log` table."""
    return _BOT_TOKEN.sub("/bot[redacted]", _SECRET_PARAM.sub(r"\1[redacted]", mask(text)))


class RedactingFilter(logging.Filter):
    """`redact` on a record's formatted message and traceback (runs after MaskingFilter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and not (
            isinstance(record.args, tuple) and len(record.args) == 5 and record.name == "uvicorn.access"
        ):
            try:
                record.msg, record.args = record.getMessage(), None
            except Exception:
                record.msg, record.args = f"{record.msg} {record.args!r}", None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class AccessArgsMaskingFilter(logging.Filter):
    """Masks uvicorn's access-log records, whose formatter needs `args` as the 5-tuple
    (client, method, path, http version, status): personal data in the path and query string is
    masked and widget session ids are redacted, the tuple shape is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            if isinstance(path, str):
                path = redact(path)
            record.args = (client, method, path, version, status)
        else:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


def _install_redaction(logger: logging.Logger) -> None:
    """RedactingFilter on `logger` and its handlers, after the masking filter (idempotent)."""
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


def install_all_log_masking() -> None:
    """Masking and redaction on the root logger and on every logger that does not propagate to it
    (uvicorn's)."""
    install_log_masking()
    _install_redaction(logging.getLogger())
    access = logging.getLogger("uvicorn.access")
    for handler in access.handlers:
        if not any(isinstance(f, AccessArgsMaskingFilter) for f in handler.filters):
            handler.addFilter(AccessArgsMaskingFilter())
    if not any(isinstance(f, AccessArgsMaskingFilter) for f in access.filters):
        access.addFilter(AccessArgsMaskingFilter())
    names = ["uvicorn", "uvicorn.error", "uvicorn.asgi", "gunicorn.error"]
    names += [
        n
        for n, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger) and not lg.propagate and lg.handlers and n != "uvicorn.access"
    ]
    for name in dict.fromkeys(names):
        lg = logging.getLogger(name)
        if any(isinstance(f, AccessArgsMaskingFilter) for f in lg.filters):
            continue
        if lg.handlers or name != "uvicorn.asgi":
            install_log_masking(lg)
            _install_redaction(lg)


__all__ = [
    "API_CSP",
    "PAGE_CSP",
    "AccessArgsMaskingFilter",
    "ConsoleIpAllowlist",
    "SecurityHeaders",
    "docs_csp",
    "install_all_log_masking",
    "parse_networks",
    "MaskingFilter",
    "RedactingFilter",
    "redact",
]
