"""The WeChat Official Account channel (公众号, endpoint /wechat): the only module that speaks WeChat.

It owns the edge that wechatpy leaves open: the body size cap before any parsing, a freshness window
on the timestamp, constant-time checks of `signature` and of `msg_signature` over the encrypted
payload (checked before decryption), the encryption mode (plain / compatible / safe, as chosen in the
WeChat admin page: in safe mode a POST without `encrypt_type=aes` and a valid `msg_signature` is
refused, because the URL signature covers only token, timestamp and nonce, not the body), XML refused
when it declares a DTD or entities, every wechatpy/parser exception turned into 400, and HTTP
timeouts on every API call. Messages are deduplicated across workers in the database
(`InboundMessage`, keyed by FromUserName+MsgId, or FromUserName+CreateTime for events) so a WeChat
retry never creates a second query-log entry or ticket and gets the same reply, and a stored reply
only ever goes to the user it was made for. The same row holds the request's signed (timestamp,
nonce) pair, unique: a pair already accepted that comes back with a different message is a replay
of a captured signature and refused (403) by every worker and app server. The answer is rendered as the passive XML
reply when it is ready within the budget, else the request is answered with "success" and the
answer is sent with the customer-service message API. Later pushes (staff replies to tickets) use
the customer-service API inside the 48-hour window since the user's last message, a subscription
or template notice outside it when configured, else raise `PushImpossible`. The access_token lives
in the database (`AppValue` through wechatpy's `SessionStorage` interface) so that workers share it.

The endpoint is async so that a request waiting for its answer holds no thread: the conversation
(database work) runs in the channel's own bounded thread pool.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import html
import logging
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import requests
import xmltodict
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import WeChatClientException, WeChatException
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage
from wechatpy.replies import TextReply
from wechatpy.session import SessionStorage

from bot import texts
from bot.conversation import Incoming, Reply
from bot.models import AppValue, InboundMessage
from bot.notifier import PushImpossible
from bot.pipeline.inbox import NEW, Inbox
from knowledge.db import single_statement
from knowledge.models import utcnow

log = logging.getLogger("policybot.wechat")

MAX_BODY = 64 * 1024
MODES = ("plain", "compatible", "safe")
WINDOW = dt.timedelta(hours=48)  # customer-service messages allowed after the user's last message
TOUCH_EVERY = dt.timedelta(hours=1)  # last-inbound time is rewritten at most this often
REPLY_BYTES = 2000  # WeChat text messages are limited to about 2048 bytes
DEDUP_KEEP = dt.timedelta(days=1)
CLEANUP_EVERY = 600.0
PLEASE_TYPE = "目前只能识别文字消息，请直接输入您要咨询的问题（文字），例如：依申请公开多久答复？"
UNKNOWN_MENU = "该菜单暂未开放，请直接输入您要咨询的问题。"
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token
IMPOSSIBLE_ERRORS = {43004, 43019, 45015, 45047, 48001}  # unsubscribed, blocked, window, limits, no rights
USER_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
CREATE_TIME_RE = re.compile(r"^[0-9]{1,12}$")
URL_RE = re.compile(r"\bhttps?://[^\s<>\"'，。；）)＜＞]+")
TAG_CHARS = str.maketrans({"<": "＜", ">": "＞"})

# Everything wechatpy, expat, base64, AES and the message fields raise on bad input.
BAD_INPUT = (
    WeChatException,
    ExpatError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    struct.error,
    binascii.Error,
    UnicodeError,
    OverflowError,
)


class BadRequest(Exception):
    """Refused input: the status to answer with (400 or 403) and a reason for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WxMessage:
    """What the channel needs of one inbound message, extracted (and validated) at the edge."""

    kind: str  # text | voice | image | ... | event | unknown
    event: str  # subscribe | unsubscribe | click | view | ... ('' for messages)
    user: str  # FromUserName (the openid)
    account: str  # ToUserName (the Official Account)
    create_time: int
    msg_id: str | None
    text: str  # text content, voice recognition result, or the menu key of a CLICK
    raw: Any  # the wechatpy message (for TextReply)
    replay_key: str = ""  # the request's signed "timestamp:nonce"

    @property
    def dedup_key(self) -> str:
        # Always starts with the sender: MsgIds have collided across users. Events have no MsgId:
        # FromUserName + CreateTime (WeChat's advice), plus the event and key so that e.g. subscribe
        # and unsubscribe within one second stay two events.
        if self.msg_id:
            return f"{self.user}:{self.msg_id}"
        return f"{self.user}:{self.create_time}:{self.event}:{self.text}"[:128]


# --- shared access_token ------------------------------------------------------------------------
def _upsert(s: Session, key: str, value: str, expires_at: dt.datetime | None, *, update: bool = True) -> None:
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
            _upsert(s, self._key(key), str(value), expires)

    def delete(self, key: str) -> None:
        with self.sessions.begin() as s:
            s.execute(delete(AppValue).where(AppValue.key == self._key(key)))

    def refresh(self, key: str, fetch: Callable[[], tuple[str, int]], *, stale: str | None) -> str:
        """A valid token other than `stale`, fetching one (and storing it) only if there is none."""
        full = self._key(key)
        with self.sessions.begin() as s:
            _upsert(s, full, "", utcnow() - dt.timedelta(seconds=1), update=False)
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


# --- rendering ----------------------------------------------------------------------------------
def render_text(reply: Reply) -> str:
    """A Reply as WeChat text: suggestions as numbered lines (unless the text has them), http(s)
    links as <a>, linked sources. WeChat renders <a> tags in text messages, so any angle bracket of
    the answer itself (an FAQ may hold HTML) becomes a full-width one: the only tags are our links,
    and they only ever point to http(s)."""
    text = reply.text.strip()
    if reply.suggestions and f"1. {reply.suggestions[0]}" not in text:
        text += "\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(reply.suggestions, 1))
    text = text.translate(TAG_CHARS)
    text = URL_RE.sub(lambda m: f'<a href="{html.escape(m.group(0))}">{m.group(0)}</a>', text)
    links = []
    for src in reply.sources:
        url = str(src.get("url") or "")
        if URL_RE.fullmatch(url) and url not in text:
            title = str(src.get("title") or "政策原文").translate(TAG_CHARS)
            links.append(f'<a href="{html.escape(url)}">《{title}》</a>')
    if links:
        text += "\n原文链接：" + " ".join(links)
    return text


def render_replies(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(r) for r in replies if r.text.strip())


def split_bytes(text: str, limit: int = REPLY_BYTES) -> list[str]:
    """Split at line ends (else anywhere) into pieces of at most `limit` UTF-8 bytes."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:  # one very long line
            cut = len(line)
            while len(line[:cut].encode()) > limit:
                cut = cut * 3 // 4
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        if len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()] or [""]


def _cdata_safe(text: str) -> str:
    return text.replace("]]>", "]] >")


# --- the channel --------------------------------------------------------------------------------
class WeChatChannel:
    name = "wechat"

    def __init__(
        self,
        *,
        inbox: Inbox,
        sessions: sessionmaker[Session],
        token: str,
        app_id: str | None = None,
        secret: str | None = None,
        aes_key: str | None = None,
        mode: str | None = None,
        api_base: str = "https://api.weixin.qq.com/cgi-bin/",
        http_timeout: float = 5.0,
        reply_budget: float = 4.0,
        max_age: int = 300,
        menu: dict[str, str] | None = None,
        notice_template_id: str | None = None,
        notice_kind: str = "subscribe",
        notice_fields: dict[str, str] | None = None,
        workers: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise ValueError("the WeChat channel needs its Token")
        if notice_kind not in ("subscribe", "template"):
            raise ValueError("wechat notice kind must be 'subscribe' or 'template'")
        self.inbox = inbox
        self.sessions = sessions
        self.token = token
        self.app_id = app_id or ""
        self.crypto: WeChatCrypto | None = None
        if aes_key:
            if not app_id:
                raise ValueError("safe mode (EncodingAESKey) needs the AppID")
            try:
                self.crypto = WeChatCrypto(token, aes_key, app_id)
            except (AssertionError, ValueError, binascii.Error) as exc:
                raise ValueError(
                    "EncodingAESKey must be the 43 characters shown in the WeChat console"
                ) from exc
        self.mode = mode or ("safe" if self.crypto is not None else "plain")
        if self.mode not in MODES:
            raise ValueError("POLICYBOT_WECHAT_MODE must be plain, compatible or safe")
        if self.mode != "plain" and self.crypto is None:
            raise ValueError(f"WeChat {self.mode} mode needs POLICYBOT_WECHAT_AES_KEY (EncodingAESKey)")
        self.client: PolicybotWeChatClient | None = None
        if app_id and secret:
            self.client = PolicybotWeChatClient(
                app_id, secret, base_url=api_base, timeout=http_timeout, storage=DbSessionStorage(sessions)
            )
        self.reply_budget = reply_budget
        self.max_age = max_age
        self.menu = dict(menu or {})
        self.notice_template_id = notice_template_id
        self.notice_kind = notice_kind
        self.notice_fields = dict(notice_fields or {})
        self.clock = clock
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="policybot-wechat"
        )
        self._last_cleanup = 0.0
        self._cleanup_lock = threading.Lock()
        self._touched: dict[str, float] = {}  # user -> monotonic time this worker last wrote last_in

    @classmethod
    def from_settings(cls, settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]) -> WeChatChannel:
        return cls(
            inbox=inbox,
            sessions=sessions,
            token=settings.wechat_token,
            app_id=settings.wechat_app_id,
            secret=settings.wechat_secret,
            aes_key=settings.wechat_aes_key,
            mode=settings.wechat_mode,
            api_base=settings.wechat_api_base,
            http_timeout=settings.wechat_http_timeout,
            reply_budget=settings.wechat_reply_budget_seconds,
            max_age=settings.wechat_max_age_seconds,
            menu=settings.wechat_menu,
            notice_template_id=settings.wechat_notice_template_id,
            notice_kind=settings.wechat_notice_kind,
            notice_fields=settings.wechat_notice_fields,
        )

    # --- checks -------------------------------------------------------------------------------------
    def _signature(self, *parts: str) -> str:
        return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()

    def _check_fresh(self, timestamp: str) -> None:
        if not isinstance(timestamp, str) or not CREATE_TIME_RE.match(timestamp):
            raise BadRequest(403, "bad timestamp")
        if abs(self.clock() - int(timestamp)) > self.max_age:
            raise BadRequest(403, "stale timestamp (replay?)")

    def _check_signature(self, signature: str, timestamp: str, nonce: str) -> None:
        expected = self._signature(self.token, timestamp, nonce)
        if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
            raise BadRequest(403, "bad signature")

    @staticmethod
    def _parse_xml(data: bytes | str) -> dict[str, Any]:
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > MAX_BODY:
            raise BadRequest(400, "body too large")
        head = raw[:4096].upper()
        if b"<!DOCTYPE" in head or b"<!ENTITY" in raw.upper():
            raise BadRequest(400, "DTD or entity declaration")
        try:
            doc = xmltodict.parse(raw, disable_entities=True)
        except BAD_INPUT:
            raise BadRequest(400, "malformed XML") from None
        root = doc.get("xml") if isinstance(doc, dict) else None
        if not isinstance(root, dict):
            raise BadRequest(400, "no <xml> root element")
        return root

    def verify_and_parse(self, body: bytes, params: dict[str, str]) -> tuple[WxMessage, bool]:
        """All the edge checks, in order; returns the message (with its replay key) and whether the
        reply is encrypted."""
        if len(body) > MAX_BODY:
            raise BadRequest(400, "body too large")
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        self._check_fresh(timestamp)
        if not NONCE_RE.match(nonce):
            raise BadRequest(403, "bad nonce")
        self._check_signature(params.get("signature", ""), timestamp, nonce)
        encrypted = params.get("encrypt_type", "raw").lower() == "aes"
        if self.mode == "safe" and not encrypted:
            raise BadRequest(403, "safe mode: unencrypted message refused")
        if self.mode == "plain" and encrypted:
            raise BadRequest(400, "encrypted message but plain mode (no EncodingAESKey configured)")
        outer = self._parse_xml(body)
        if encrypted:
            if self.crypto is None:
                raise BadRequest(400, "encrypted message but no EncodingAESKey configured")
            encrypt = outer.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt:
                raise BadRequest(400, "no Encrypt element")
            expected = self._signature(self.token, timestamp, nonce, encrypt)
            if not hmac.compare_digest(expected.encode(), params.get("msg_signature", "").encode()):
                raise BadRequest(403, "bad msg_signature")
            try:
                plain = self.crypto.decrypt_message(
                    {"Encrypt": encrypt}, params["msg_signature"], timestamp, nonce
                )
            except BAD_INPUT:
                raise BadRequest(400, "cannot decrypt") from None
            fields = self._parse_xml(plain)
        elif self.crypto is not None and "Encrypt" in outer and "MsgType" not in outer:
            raise BadRequest(400, "encrypted body without encrypt_type")
        else:
            fields = outer
        try:
            msg = self._message(fields)
        except BadRequest:
            raise
        except BAD_INPUT:
            raise BadRequest(400, "bad message fields") from None
        return dataclasses.replace(msg, replay_key=f"{int(timestamp)}:{nonce}"), encrypted

    @staticmethod
    def _message(m: dict[str, Any]) -> WxMessage:
        """Mirror of wechatpy.parser.parse_message on an already (safely) parsed dict."""
        msg_type = m["MsgType"]
        if not isinstance(msg_type, str):
            raise TypeError("MsgType")
        msg_type = msg_type.lower()
        event = ""
        if msg_type == "event":
            ev = m.get("Event")
            if not isinstance(ev, str):
                raise TypeError("Event")
            event = ev.lower()
            key = m.get("EventKey")
            if event == "subscribe" and isinstance(key, str) and key.startswith("qrscene_"):
                event = "subscribe_scan"
            cls = EVENT_TYPES.get(event, UnknownMessage)
        else:
            cls = MESSAGE_TYPES.get(msg_type, UnknownMessage)
        raw = cls(m)
        user, account = m.get("FromUserName"), m.get("ToUserName")
        if not isinstance(user, str) or not USER_RE.match(user):
            raise BadRequest(400, "bad FromUserName")
        if not isinstance(account, str) or not account or len(account) > 64:
            raise BadRequest(400, "bad ToUserName")
        created = m["CreateTime"]
        if not isinstance(created, str) or not CREATE_TIME_RE.match(created.strip()):
            raise BadRequest(400, "bad CreateTime")
        create_time = int(created)
        msg_id = m.get("MsgId")
        if msg_id is not None:
            if not isinstance(msg_id, str) or not msg_id.isdigit() or len(msg_id) > 32:
                raise BadRequest(400, "bad MsgId")
        text = ""
        if msg_type == "text":
            content = m.get("Content")
            text = content if isinstance(content, str) else ""
        elif msg_type == "voice":
            rec = m.get("Recognition")
            text = rec if isinstance(rec, str) else ""
        elif msg_type == "event":
            key = m.get("EventKey")
            text = key if isinstance(key, str) else ""
        return WxMessage(msg_type, event, user, account, create_time, msg_id, text.strip(), raw)

    # --- processing (runs in the executor) ----------------------------------------------------------
    def touch(self, user: str) -> None:
        """Remember the user's last message time (for the 48-hour customer-service window)."""
        key = f"wechat:last_in:{user}"
        mono = time.monotonic()
        if mono - self._touched.get(user, -1e9) < TOUCH_EVERY.total_seconds():
            return  # this worker wrote it recently: no database round trip
        now = utcnow()
        with self.sessions() as s:
            row = s.get(AppValue, key)
            fresh = (
                row is not None and row.expires_at is not None and row.expires_at - WINDOW > now - TOUCH_EVERY
            )
        if not fresh:
            with single_statement(self.sessions) as s:
                _upsert(s, key, now.isoformat(timespec="seconds"), now + WINDOW)
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[user] = mono

    def within_window(self, user: str) -> bool:
        with self.sessions() as s:
            row = s.get(AppValue, f"wechat:last_in:{user}")
            return row is not None and row.expires_at is not None and row.expires_at > utcnow()

    def incoming(self, msg: WxMessage) -> Incoming | str | None:
        """The message for the inbox; or a fixed hint (str) for what the conversation does not take
        (images, unknown menu keys); or None for events that need no reply (VIEW, LOCATION, ...)."""
        received = dt.datetime.fromtimestamp(msg.create_time, dt.UTC).replace(tzinfo=None)
        msg_id = msg.msg_id or f"{msg.create_time}:{msg.event}:{msg.text}"[:60]
        kind, text = "text", msg.text
        if msg.kind == "event":
            command = self.menu.get(msg.text) if msg.event == "click" else None
            if msg.event in ("subscribe", "subscribe_scan"):
                kind = "welcome"
            elif msg.event == "unsubscribe":
                kind = "end"
            elif msg.event != "click":
                return None  # VIEW, LOCATION, SCAN, template delivery reports...
            elif command is None:
                return UNKNOWN_MENU
            elif command.strip() in ("/top", "/welcome"):
                kind = "welcome"
            else:
                text = command
        elif msg.kind not in ("text", "voice") or not msg.text:
            return PLEASE_TYPE
        return Incoming(
            self.name,
            msg.user,
            text,
            msg_id=msg_id,
            received_at=received,
            kind=kind,
            meta={"msg_type": msg.kind, "event": msg.event, "replay_key": msg.replay_key},
        )

    def process(self, msg: WxMessage) -> tuple[str, str | None]:
        """Through the inbox (dedup, state, decision, one write). Returns (status, reply text)."""
        incoming = self.incoming(msg)
        if not isinstance(incoming, Incoming):
            return NEW, incoming
        self._maybe_cleanup()
        received = self.inbox.receive(incoming)
        if received.status == NEW and incoming.kind != "end":
            try:
                self.touch(msg.user)
            except Exception as exc:  # the database is away: the window is refreshed next time
                log.warning("wechat_touch_failed: %s", type(exc).__name__)
        return received.status, render_replies(received.replies) or None

    def _maybe_cleanup(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < CLEANUP_EVERY or not self._cleanup_lock.acquire(blocking=False):
            return
        try:
            self._last_cleanup = now
            cutoff = utcnow() - DEDUP_KEEP
            with self.sessions.begin() as s:
                s.execute(
                    delete(InboundMessage).where(
                        InboundMessage.channel == self.name, InboundMessage.created_at < cutoff
                    )
                )
                s.execute(
                    delete(AppValue).where(
                        AppValue.key.like("wechat:last_in:%"), AppValue.expires_at < utcnow()
                    )
                )
        except SQLAlchemyError as exc:  # the database is away: the next cleanup catches up
            log.warning("wechat_cleanup_failed: %s", type(exc).__name__)
        except Exception:
            log.exception("wechat_cleanup_failed")
        finally:
            self._cleanup_lock.release()

    def _late(self, msg: WxMessage, fut: concurrent.futures.Future[tuple[str, str | None]]) -> None:
        """The answer missed the passive-reply budget: send it as customer-service message(s)."""
        try:
            status, text = fut.result()
            if status != NEW or not text:
                return
            self.send_text(msg.user, text)
            incoming = self.incoming(msg)
            if isinstance(incoming, Incoming):
                self.inbox.mark(incoming, "pushed")  # a retry after this gets nothing twice
            log.info("wechat_late_answer_pushed key=%s", msg.dedup_key)
        except Exception:
            log.exception("wechat_late_answer_failed key=%s", msg.dedup_key)

    # --- rendering the passive reply ------------------------------------------------------------------
    def passive(self, msg: WxMessage, text: str | None, encrypted: bool) -> tuple[str, list[str]]:
        """The HTTP body (XML, or 'success' for nothing) and any pieces to push afterwards."""
        if not text:
            return "success", []
        pieces = split_bytes(text)
        xml = TextReply(message=msg.raw, content=_cdata_safe(pieces[0])).render()
        if encrypted and self.crypto is not None:
            nonce = hashlib.sha1(f"{time.time_ns()}:{msg.dedup_key}".encode()).hexdigest()[:16]
            xml = self.crypto.encrypt_message(xml, nonce, str(int(self.clock())))
        return xml, pieces[1:]

    # --- pushes --------------------------------------------------------------------------------------
    def send_text(self, user: str, text: str) -> None:
        client = self._require_client()
        for piece in split_bytes(text):
            self._send(functools.partial(client.message.send_text, user, piece))

    def _send(self, fn: Callable[[], Any]) -> Any:
        client = self._require_client()
        try:
            return client.call(fn)
        except WeChatClientException as exc:
            if exc.errcode in IMPOSSIBLE_ERRORS:
                raise PushImpossible(f"WeChat refused the message (errcode {exc.errcode})") from None
            raise
        except requests.RequestException as exc:
            raise ConnectionError(f"WeChat API unreachable: {type(exc).__name__}") from None

    def _require_client(self) -> PolicybotWeChatClient:
        if self.client is None:
            raise PushImpossible("no AppID/AppSecret configured: cannot call the WeChat API")
        return self.client

    def push(self, user_id: str, reply: Reply) -> None:
        """A later reply (staff answer): customer-service message inside the 48-hour window, else a
        notice when a template is configured, else PushImpossible (the reply stays available via
        "查询 <编号>")."""
        if self.within_window(user_id):
            self.send_text(user_id, render_text(reply))
            return
        if not self.notice_template_id:
            raise PushImpossible(
                "outside the 48-hour customer-service window and no notice template configured"
            )
        client = self._require_client()
        values = reply.notice or texts.ticket_reply_notice({"ticket_no": reply.ticket_no or ""})
        data: dict[str, dict[str, str]] = {}
        for field, fmt in self.notice_fields.items():
            try:
                value = fmt.format(**values)
            except (KeyError, IndexError, ValueError):
                value = fmt
            data[field] = {"value": value[:20] if field.startswith("thing") else value[:32]}
        template_id = self.notice_template_id
        if self.notice_kind == "template":
            self._send(lambda: client.message.send_template(user_id, template_id, data))
        else:
            self._send(lambda: client.message.send_subscribe_message(user_id, template_id, data))

    # --- routes ------------------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        # No shutdown hook: the executor's threads are joined at interpreter exit, so late
        # customer-service pushes still in flight complete during a graceful shutdown.
        channel = self
        api = APIRouter(tags=["wechat"])

        @api.get("/wechat", response_class=PlainTextResponse, summary="WeChat server URL verification")
        def verify(
            signature: str = Query("", max_length=64),
            timestamp: str = Query("", max_length=20),
            nonce: str = Query("", max_length=64),
            echostr: str = Query("", max_length=512),
        ) -> Response:
            try:
                channel._check_fresh(timestamp)
                channel._check_signature(signature, timestamp, nonce)
            except BadRequest as exc:
                log.warning("wechat_verify_refused reason=%s", exc.reason)
                return PlainTextResponse("forbidden", exc.status)
            return PlainTextResponse(echostr)

        @api.post("/wechat", summary="WeChat message callback (plain, compatible or safe mode)")
        async def callback(request: Request) -> Response:
            body = await _read_capped(request, MAX_BODY)
            if body is None:
                return PlainTextResponse("bad request", 400)
            params = {k: v[:512] for k, v in request.query_params.items()}
            try:
                msg, encrypted = channel.verify_and_parse(body, params)
            except BadRequest as exc:
                log.warning("wechat_refused status=%s reason=%s", exc.status, exc.reason)
                return PlainTextResponse("forbidden" if exc.status == 403 else "bad request", exc.status)
            fut = channel.executor.submit(channel.process, msg)
            try:
                status, text = await asyncio.wait_for(
                    asyncio.shield(asyncio.wrap_future(fut)), channel.reply_budget
                )
            except TimeoutError:
                log.info("wechat_budget_exceeded key=%s", msg.dedup_key)
                fut.add_done_callback(lambda f: channel.executor.submit(channel._late, msg, f))
                return PlainTextResponse("success")
            except Exception:
                log.exception("wechat_process_failed")
                return PlainTextResponse("success")
            if status == "replay":
                return PlainTextResponse("forbidden", 403)
            if status == "busy":
                return PlainTextResponse("success")
            try:
                xml, rest = channel.passive(msg, text, encrypted)
            except Exception:
                log.exception("wechat_render_failed")
                return PlainTextResponse("success")
            if rest and status == NEW:
                channel.executor.submit(channel._push_rest, msg.user, rest)
            media = "application/xml" if xml != "success" else "text/plain"
            return Response(xml, media_type=media)

        return api

    def _push_rest(self, user: str, pieces: list[str]) -> None:
        try:
            client = self._require_client()
            for piece in pieces:
                self._send(functools.partial(client.message.send_text, user, piece))
        except Exception:
            log.exception("wechat_push_rest_failed")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` (never buffers more than that)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def enabled(settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]) -> list[WeChatChannel]:
    """The channel when POLICYBOT_WECHAT_TOKEN is set, else nothing (for the channel list in app.py)."""
    if not settings.wechat_token:
        return []
    return [WeChatChannel.from_settings(settings, inbox=inbox, sessions=sessions)]
