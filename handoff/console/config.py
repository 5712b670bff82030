"""Configuration of the staff console and the public board, handed in by the app factory (the
handoff package never reads settings): the signing key, session timeouts, cookie flags, login
throttling, the proxies whose X-Forwarded-For is believed, and the limit and staging place of uploaded
FAQ files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsoleConfig:
    secret_key: str
    idle_timeout: dt.timedelta = dt.timedelta(minutes=30)
    absolute_timeout: dt.timedelta = dt.timedelta(hours=10)
    cookie_secure: bool = False  # Secure cookies with the __Host- prefix (serve over HTTPS)
    max_failures: int = 5  # per username, inside `lockout`
    ip_max_failures: int = 20  # per client IP (several staff may share an office NAT)
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    board_max_failures: int = 10  # wrong verification codes per IP and per ticket number
    trusted_proxies: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)  # extra Origins accepted on POST
    page_size: int = 50
    duplicate_similarity: float = 0.75  # matcher similarity at which a ticket is hinted as a duplicate
    upload_max_bytes: int = 10 * 1024 * 1024  # FAQ files uploaded for import (/console/kb/import)
    upload_dir: str = ""  # where uploaded files wait for the confirm step; "": the system temp dir
    live_poll_seconds: float = 20.0  # how often the console polls /console/api/counts (live.js)

    def __post_init__(self) -> None:
        if len(self.secret_key) < 8:
            raise ValueError("console secret_key must be at least 8 characters")
        if self.idle_timeout <= dt.timedelta(0) or self.absolute_timeout < self.idle_timeout:
            raise ValueError("console timeouts: need 0 < idle_timeout <= absolute_timeout")
        if self.max_failures < 1 or self.ip_max_failures < 1 or self.board_max_failures < 1:
            raise ValueError("console failure limits must be at least 1")

    @property
    def session_cookie(self) -> str:
        return "__Host-pb_console" if self.cookie_secure else "pb_console"

    @property
    def pre_cookie(self) -> str:
        """Cookie of the anonymous CSRF token (login form, public board forms)."""
        return "__Host-pb_csrf" if self.cookie_secure else "pb_csrf"
