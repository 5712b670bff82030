"""The WeChat channel itself (endpoint /wechat): the routes, the message as `Incoming` for the inbox,
the reply, and the pushes.

Messages are deduplicated across workers in the database by the inbox (`InboundMessage`, keyed by
FromUserName+MsgId, or FromUserName+CreateTime for events) so a WeChat retry never creates a second
query-log entry or ticket and gets the same reply, and a stored reply only ever goes to the user it
was made for. The same row holds the request's signed (timestamp, nonce) pair, unique: a pair already
accepted that comes back with a different message is a replay of a captured signature and refused
(403) by every worker and app server. The answer is rendered as the passive XML reply when it is
ready within the budget, else the request is answered with "success" and the answer is sent with the
customer-service message API. Later pushes (staff replies to tickets) use the customer-service API
inside the 48-hour window since the user's last message (the time of their conversation state,
written by the inbox with every message: the window costs no statement of its own), a subscription
or template notice outside it when configured, else raise `PushImpossible`.

The endpoint is async so that a request waiting for its answer holds no thread: the conversation
(database work) runs in the channel's own bounded thread pool.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import datetime as dt
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.replies import TextReply

from bot import texts
from bot.channels.wechat.api import (
    IMPOSSIBLE_ERRORS,
    DbSessionStorage,
    PolicybotWeChatClient,
)
from bot.channels.wechat.edge import MAX_BODY, MODES, BadRequest, Edge, WxMessage, read_capped
from bot.channels.wechat.render import _cdata_safe, render_replies, render_text, split_bytes
from bot.conversation import Incoming, Reply
from bot.models import AppValue, ChatSession, InboundMessage
from bot.notifier import PushImpossible
from bot.pipeline.inbox import NEW, Inbox
from knowledge.models import utcnow

log = logging.getLogger("policybot.wechat")

WINDOW = dt.timedelta(hours=48)  # customer-service messages allowed after the user's last message
DEDUP_KEEP = dt.timedelta(days=1)
CLEANUP_EVERY = 600.0
BUILTIN_MENU = {"MY_SUBSCRIPTIONS": "我的订阅"}  # menu CLICK keys that work without POLICYBOT_WECHAT_MENU


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
        self.app_id = app_id or ""
        crypto: WeChatCrypto | None = None
        if aes_key:
            if not app_id:
                raise ValueError("safe mode (EncodingAESKey) needs the AppID")
            try:
                crypto = WeChatCrypto(token, aes_key, app_id)
            except (AssertionError, ValueError, binascii.Error) as exc:
                raise ValueError(
                    "EncodingAESKey must be the 43 characters shown in the WeChat console"
                ) from exc
        mode = mode or ("safe" if crypto is not None else "plain")
        if mode not in MODES:
            raise ValueError("POLICYBOT_WECHAT_MODE must be plain, compatible or safe")
        if mode != "plain" and crypto is None:
            raise ValueError(f"WeChat {mode} mode needs POLICYBOT_WECHAT_AES_KEY (EncodingAESKey)")
        self.edge = Edge(token, crypto, mode, max_age, clock)
        self.client: PolicybotWeChatClient | None = None
        if app_id and secret:
            self.client = PolicybotWeChatClient(
                app_id, secret, base_url=api_base, timeout=http_timeout, storage=DbSessionStorage(sessions)
            )
        self.reply_budget = reply_budget
        self.menu = dict(menu or {})
        self.notice_template_id = notice_template_id
        self.notice_kind = notice_kind
        self.notice_fields = dict(notice_fields or {})
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="policybot-wechat"
        )
        self._last_cleanup = float("-inf")  # monotonic time of the last cleanup: none yet
        self._cleanup_lock = threading.Lock()
        self._reader = inbox.reader  # the window read: autocommit on PostgreSQL

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

    @property
    def mode(self) -> str:
        """plain, compatible or safe (the edge's)."""
        return self.edge.mode

    # --- processing (runs in the executor) ----------------------------------------------------------
    def within_window(self, user: str) -> bool:
        """Whether the user wrote within the last 48 hours: the time of their conversation state,
        which the inbox's one write of every message sets anyway (no row of the channel's own)."""
        with self._reader.connect() as conn:
            at = conn.execute(
                select(ChatSession.updated_at).where(
                    ChatSession.channel == self.name, ChatSession.user_id == user
                )
            ).scalar()
        return at is not None and utcnow() - at < WINDOW

    def incoming(self, msg: WxMessage) -> Incoming | str | None:
        """The message for the inbox; or a fixed hint (str) for what the conversation does not take
        (images, unknown menu keys); or None for events that need no reply (VIEW, LOCATION, ...)."""
        received = dt.datetime.fromtimestamp(msg.create_time, dt.UTC).replace(tzinfo=None)
        msg_id = msg.msg_id or f"{msg.create_time}:{msg.event}:{msg.text}"[:60]
        kind, text = "text", msg.text
        if msg.kind == "event":
            command = self.menu.get(msg.text, BUILTIN_MENU.get(msg.text)) if msg.event == "click" else None
            if msg.event in ("subscribe", "subscribe_scan"):
                kind = "welcome"
            elif msg.event == "unsubscribe":
                kind = "end"
            elif msg.event != "click":
                return None  # VIEW, LOCATION, SCAN, template delivery reports...
            elif command is None:
                return texts.say("channel.unknown_menu")
            elif command.strip() in ("/top", "/welcome"):
                kind = "welcome"
            else:
                text = command
        elif msg.kind == "voice" and not msg.text:  # no Recognition: say so, in one short line
            return texts.say("voice.unrecognised")
        elif msg.kind not in ("text", "voice") or not msg.text:
            return texts.say("channel.please_type")
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
                s.execute(  # the window's own rows of earlier versions (now the conversation's time)
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
        if encrypted and self.edge.crypto is not None:
            nonce = hashlib.sha1(f"{time.time_ns()}:{msg.dedup_key}".encode()).hexdigest()[:16]
            xml = self.edge.crypto.encrypt_message(xml, nonce, str(int(self.edge.clock())))
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
                channel.edge.check_fresh(timestamp)
                channel.edge.check_signature(signature, timestamp, nonce)
            except BadRequest as exc:
                log.warning("wechat_verify_refused reason=%s", exc.reason)
                return PlainTextResponse("forbidden", exc.status)
            return PlainTextResponse(echostr)

        @api.post("/wechat", summary="WeChat message callback (plain, compatible or safe mode)")
        async def callback(request: Request) -> Response:
            body = await read_capped(request, MAX_BODY)
            if body is None:
                return PlainTextResponse("bad request", 400)
            params = {k: v[:512] for k, v in request.query_params.items()}
            try:
                msg, encrypted = channel.edge.verify_and_parse(body, params)
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


def enabled(settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]) -> list[WeChatChannel]:
    """The channel when POLICYBOT_WECHAT_TOKEN is set, else nothing (for the channel list in app.py)."""
    if not settings.wechat_token:
        return []
    return [WeChatChannel.from_settings(settings, inbox=inbox, sessions=sessions)]
