"""The WeChat API client: wechatpy's client against a configurable base URL with HTTP timeouts on
every call, and the access_token in the database (`AppValue` through wechatpy's `SessionStorage`
interface) so that all workers share one token; a rejected token is replaced once and the call
repeated (`upsert_app_value`: one statement on either dialect).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import requests
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from wechatpy.client import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.models import AppValue
from knowledge.models import utcnow

log = logging.getLogger("policybot.wechat")

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token
# unsubscribed, blocked, window, limits, no rights; 43101: the user did not accept (or used up) the
# subscription notice (订阅通知)
IMPOSSIBLE_ERRORS = {43004, 43019, 45015, 45047, 48001, 43101}


def upsert_app_value(
    s: Session, key: str, value: str, expires_at: dt.datetime | None, *, update: bool = True
) -> None:
    """Insert the `AppValue` row, or on a conflict replace it (`update`) or leave it."""
    bind = s.get_bind()
    ins = (pg_insert if bind.dialect.name == "postgresql" else sqlite_insert)(AppValue)
    stmt = ins.values(key=key, value=value, expires_at=expires_at)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": value, "expires_at": expires_at}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
    s.execute(stmt)


class DbSessionStorage(SessionStorage):  # type: ignore[misc]
    """wechatpy's SessionStorage on the `app_value` table: one token for all workers.

    A value is reported missing `margin` seconds before it expires so that nobody uses a token
    that dies in flight. `refresh` fetches a new token under a row lock (PostgreSQL) unless another
    worker has already replaced the stale one.
    """

    def __init__(
        self, sessions: sessionmaker[Session], *, prefix: str = "wechat:", margin: float = 120.0
    ) -> None:
        self.sessions = sessions
        self.prefix = prefix
        self.margin = dt.timedelta(seconds=margin)

    def _key(self, key: str) -> str:
        return (self.prefix + key)[:80]

    def get(self, key: str, default: Any = None) -> Any:
        with self.sessions() as s:
            row = s.get(AppValue, self._key(key))
            if row is None or (row.expires_at is not None and row.expires_at - self.margin <= utcnow()):
                return default
            return row.value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        expires = utcnow() + dt.timedelta(seconds=int(ttl)) if ttl else None
        with self.sessions.begin() as s:
            upsert_app_value(s, self._key(key), str(value), expires)

    def delete(self, key: str) -> None:
        with self.sessions.begin() as s:
            s.execute(delete(AppValue).where(AppValue.key == self._key(key)))

    def refresh(self, key: str, fetch: Callable[[], tuple[str, int]], *, stale: str | None) -> str:
        """A valid token other than `stale`, fetching one (and storing it) only if there is none."""
        full = self._key(key)
        with self.sessions.begin() as s:
            upsert_app_value(s, full, "", utcnow() - dt.timedelta(seconds=1), update=False)
        with self.sessions.begin() as s:
            row = s.get(AppValue, full, with_for_update=True)
            assert row is not None
            if (
                row.value
                and row.value != stale
                and row.expires_at
                and row.expires_at - self.margin > utcnow()
            ):
                return row.value
            token, expires_in = fetch()
            row.value = token
            row.expires_at = utcnow() + dt.timedelta(seconds=max(60, int(expires_in)))
            return token


class PolicybotWeChatClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client against a configurable base URL, with timeouts and the shared token."""

    def __init__(
        self, appid: str, secret: str, *, base_url: str, timeout: float, storage: DbSessionStorage
    ) -> None:
        super().__init__(appid, secret, session=storage, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url if base_url.endswith("/") else base_url + "/"
        self.storage = storage
        self._used: str | None = None

    @property
    def access_token(self) -> str:
        token = self.storage.get(self.access_token_key)
        if not token:
            token = self.storage.refresh(self.access_token_key, self._fetch, stale=None)
        self._used = token
        return str(token)

    def fetch_access_token(self) -> dict[str, Any]:
        token = self.storage.refresh(self.access_token_key, self._fetch, stale=self._used)
        return {"access_token": token}

    def _fetch(self) -> tuple[str, int]:
        log.info("wechat_token_fetch appid=%s", self.appid)
        res = self._http.get(
            self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        try:
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatClientException(None, f"token endpoint: {type(exc).__name__}", client=self) from None
        if not isinstance(result, dict) or result.get("errcode") or not result.get("access_token"):
            errcode = result.get("errcode") if isinstance(result, dict) else None
            raise WeChatClientException(errcode, "could not fetch access_token", client=self)
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    def call(self, fn: Callable[[], Any]) -> Any:
        """One API call; a rejected token is replaced once and the call repeated."""
        try:
            return fn()
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("wechat_token_rejected errcode=%s", exc.errcode)
            self.fetch_access_token()
            return fn()
