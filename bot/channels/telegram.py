"""The Telegram channel: python-telegram-bot (v22, asyncio) embedded in our web app, isolated here.

PTB runs in one event-loop thread owned by this channel (`Application.builder().updater(None)`);
our webhook route (POST /telegram/webhook) checks the X-Telegram-Bot-Api-Secret-Token header in
constant time, drops repeated update ids (database dedup shared by workers) and feeds
`Update.de_json(data, bot)` into the application's update queue. Handlers run the synchronous
Dialogue in a thread pool; text goes through it, suggestions become inline keyboard buttons
(callback data = the button's index, callback queries answered), /start gives the welcome, /status
<编号> the ticket status. Ticket replies are pushed with sendMessage from the sync world through
`asyncio.run_coroutine_threadsafe` onto that loop. `run_polling` (policybot telegram poll) runs the
same handlers with PTB's updater for development. The Bot API base URL is configurable so tests
run against a local fake server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import texts
from bot.conversation import Incoming, Reply
from bot.notifier import PushImpossible
from bot.pipeline.inbox import Inbox

log = logging.getLogger("policybot.telegram")

MAX_BODY = 64 * 1024
MAX_TEXT = 4096  # Telegram's message length limit
RATE_DATA = re.compile(r"^rate:([A-Za-z]{2}\d{8}-\d{3,6}):([123])$")
T = TypeVar("T")


def keyboard(suggestions: list[str]) -> InlineKeyboardMarkup | None:
    """One button per suggestion, the callback data being its index."""
    if not suggestions:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(s[:200], callback_data=str(i))] for i, s in enumerate(suggestions[:10])]
    )


RATING_BUTTONS = (("1", "满意"), ("2", "基本满意"), ("3", "不满意"))


def rating_keyboard(ticket_no: str) -> InlineKeyboardMarkup:
    """满意 / 基本满意 / 不满意 under a staff reply; callback data ``rate:<编号>:<1-3>``."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"rate:{ticket_no}:{n}") for n, label in RATING_BUTTONS]]
    )


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text.strip() or not pieces:
        pieces.append(text)
    return pieces


class TelegramChannel:
    name = "telegram"

    def __init__(
        self,
        *,
        inbox: Inbox,
        sessions: sessionmaker[Session],
        token: str,
        webhook_secret: str | None = None,
        api_base: str = "https://api.telegram.org",
        workers: int = 8,
        timeout: float = 30.0,
    ) -> None:
        if not token:
            raise ValueError("the Telegram channel needs the bot token")
        self.inbox = inbox
        self.dialogue = inbox.dialogue
        self.sessions = sessions
        self.token = token
        self.webhook_secret = webhook_secret or None
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="policybot-telegram"
        )
        self.application = self.build_application(polling=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]
    ) -> TelegramChannel:
        return cls(
            inbox=inbox,
            sessions=sessions,
            token=settings.telegram_token,
            webhook_secret=settings.telegram_webhook_secret,
            api_base=settings.telegram_api_base,
        )

    # --- PTB application -----------------------------------------------------------------------------
    def build_application(self, *, polling: bool) -> Application[Any, Any, Any, Any, Any, Any]:
        builder = (
            Application.builder()
            .token(self.token)
            .base_url(f"{self.api_base}/bot")
            .base_file_url(f"{self.api_base}/file/bot")
            .concurrent_updates(16)
        )
        if not polling:
            builder = builder.updater(None)
        app = builder.build()
        private = filters.ChatType.PRIVATE
        app.add_handler(CommandHandler("start", self._on_start, filters=private))
        app.add_handler(CommandHandler("status", self._on_status, filters=private))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self._on_text))
        app.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, self._on_other))
        app.add_error_handler(self._on_error)
        return app

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    @staticmethod
    async def send(bot: Any, chat_id: int, replies: list[Reply]) -> None:
        for reply in replies:
            pieces = split_text(reply.text)
            for i, piece in enumerate(pieces):
                markup = None
                if i == len(pieces) - 1:
                    markup = (
                        rating_keyboard(reply.rate_ticket)
                        if reply.rate_ticket
                        else keyboard(reply.suggestions)
                    )
                await bot.send_message(chat_id=chat_id, text=piece, reply_markup=markup)

    async def _on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        received = await self._call(self.inbox.receive, Incoming(self.name, str(chat.id), "", kind="welcome"))
        await self.send(context.bot, chat.id, received.replies)

    async def _on_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        args = context.args or []
        if not args:
            await context.bot.send_message(chat_id=chat.id, text=texts.say("channel.status_usage"))
            return
        await self._ask(context.bot, chat.id, f"查询 {args[0][:40]}", {"command": "status"})

    async def _ask(self, bot: Any, chat_id: int, text: str, meta: dict[str, Any]) -> None:
        # no msg_id: the webhook already claimed the update (Inbox.claim_once), retries never get here
        received = await self._call(self.inbox.receive, Incoming(self.name, str(chat_id), text, meta=meta))
        await self.send(bot, chat_id, received.replies)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        chat = update.effective_chat
        if msg is None or chat is None or not msg.text:
            return
        await self._ask(context.bot, chat.id, msg.text, {"update_id": update.update_id})

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is not None:
            await context.bot.send_message(chat_id=chat.id, text=texts.say("channel.please_type"))

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        await query.answer()
        message = query.message
        chosen: str | None = None
        markup = getattr(message, "reply_markup", None)
        rated = RATE_DATA.match(query.data or "")
        if rated:  # a rating button under a staff reply: the same rating as the board's
            chosen = f"评价 {rated.group(1)} {rated.group(2)}"
        elif markup is not None and (query.data or "").isdigit():
            buttons = [b for row in markup.inline_keyboard for b in row]
            idx = int(query.data or "0")
            if idx < len(buttons):
                chosen = buttons[idx].text
        if message is None or message.chat.type != ChatType.PRIVATE:
            return
        if not chosen:
            await context.bot.send_message(chat_id=message.chat.id, text=texts.say("channel.stale_button"))
            return
        await self._ask(context.bot, message.chat.id, chosen, {"callback": True})

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram_handler_error error=%s", type(context.error).__name__, exc_info=context.error)
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(chat_id=chat.id, text=texts.say("channel.busy"))

    # --- the loop thread -----------------------------------------------------------------------------
    def ensure_started(self) -> asyncio.AbstractEventLoop:
        """Start the loop thread and the application once (getMe); raises if the Bot API is down."""
        with self._lock:
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="policybot-telegram-loop", daemon=True)
            thread.start()

            async def start() -> None:
                await self.application.initialize()
                await self.application.start()

            try:
                asyncio.run_coroutine_threadsafe(start(), loop).result(self.timeout)
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=5)
                loop.close()
                raise
            self._loop, self._thread = loop, thread
            return loop

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the channel's loop from synchronous code and wait for its result."""
        loop = self.ensure_started()
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result(self.timeout)

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None:

            async def stop() -> None:
                if self.application.running:
                    await self.application.stop()
                await self.application.shutdown()

            try:
                asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
            except Exception:
                log.exception("telegram_stop_failed")
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            loop.close()
        # the executor stays: its idle threads cost nothing and a later push or polling reuses it

    # --- push and admin --------------------------------------------------------------------------------
    def push(self, user_id: str, reply: Reply) -> None:
        try:
            chat_id = int(user_id)
        except ValueError:
            raise PushImpossible(f"not a Telegram chat id: {user_id[:20]!r}") from None
        try:
            self.run(lambda: self.send(self.application.bot, chat_id, [reply]))
        except Forbidden as exc:  # the user blocked the bot
            raise PushImpossible(f"Telegram refused: {exc.message}") from None
        except BadRequest as exc:  # chat not found and similar: retrying will not help
            raise PushImpossible(f"Telegram refused: {exc.message}") from None

    def set_webhook(self, url: str) -> bool:
        if not self.webhook_secret:
            raise ValueError("POLICYBOT_TELEGRAM_WEBHOOK_SECRET must be set before registering a webhook")
        secret = self.webhook_secret
        return bool(
            self.run(
                lambda: self.application.bot.set_webhook(
                    url=url, secret_token=secret, allowed_updates=["message", "callback_query"]
                )
            )
        )

    def delete_webhook(self) -> bool:
        return bool(self.run(lambda: self.application.bot.delete_webhook()))

    def run_polling(self) -> None:
        """Development mode: long polling with PTB's updater (deletes any webhook first); blocks."""
        self.build_application(polling=True).run_polling(allowed_updates=["message", "callback_query"])

    # --- webhook -----------------------------------------------------------------------------------------
    def _claim(self, update_id: int) -> bool:
        """True the first time this update arrives (Telegram retries a webhook that did not answer)."""
        return self.inbox.claim_once(self.name, f"update:{update_id}")

    def router(self) -> APIRouter:
        channel = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            yield
            await run_in_threadpool(channel.close)

        api = APIRouter(tags=["telegram"], lifespan=lifespan)

        @api.post("/telegram/webhook", summary="Telegram Bot API webhook")
        async def webhook(
            request: Request,
            x_telegram_bot_api_secret_token: str | None = Header(None, max_length=256),
        ) -> JSONResponse:
            if not channel.webhook_secret:
                return JSONResponse({"detail": "未启用"}, 404)
            given = (x_telegram_bot_api_secret_token or "").encode()
            if not hmac.compare_digest(given, channel.webhook_secret.encode()):
                log.warning("telegram_webhook_refused reason=secret")
                return JSONResponse({"detail": "forbidden"}, 403)
            body = await request.body()
            if len(body) > MAX_BODY:
                return JSONResponse({"detail": "请求内容过大"}, 400)
            try:
                data = json.loads(body)
                if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                    raise ValueError("no update_id")
            except ValueError:
                return JSONResponse({"detail": "bad update"}, 400)
            try:
                loop = await run_in_threadpool(channel.ensure_started)
            except Exception as exc:
                log.error("telegram_start_failed error=%s", type(exc).__name__)
                return JSONResponse({"detail": "unavailable"}, 503, headers={"Retry-After": "5"})
            try:
                update = Update.de_json(data, channel.application.bot)
            except Exception:
                return JSONResponse({"detail": "bad update"}, 400)
            if not await run_in_threadpool(channel._claim, update.update_id):
                return JSONResponse({"ok": True, "duplicate": True})
            queue = channel.application.update_queue
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(queue.put(update), loop))
            return JSONResponse({"ok": True})

        return api


def enabled(settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]) -> list[TelegramChannel]:
    """The channel when POLICYBOT_TELEGRAM_TOKEN is set, else nothing (for the channel list in app.py)."""
    if not settings.telegram_token:
        return []
    return [TelegramChannel.from_settings(settings, inbox=inbox, sessions=sessions)]
