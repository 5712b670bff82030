"""The Telegram channel: python-telegram-bot (v22, asyncio) embedded in our web app, isolated here.

Inbound, PTB runs on the server's own event loop: the application is built with
`Application.builder().updater(None)` and started in the FastAPI lifespan (`lifespan()`, entered by
bot/app.py), in the background so that an unreachable Bot API never delays or breaks the start (the
webhook starts it on demand, 503 while that fails). Our webhook route (POST /telegram/webhook)
checks the X-Telegram-Bot-Api-Secret-Token header in constant time, drops repeated update ids
(database dedup shared by workers) and puts `Update.de_json(data, bot)` on the application's update
queue, as PTB's custom-webhook example does. Handlers run the synchronous Inbox in a thread pool;
suggestions become inline keyboard buttons (callback data = the button's index, callback queries
answered), /start gives the welcome, /status <编号> the ticket status, /subscribe <tag>,
/unsubscribe <tag> and /subscriptions the subscription commands (bot/subscribe_talk.py). Outbound, everything that
starts in synchronous code (the outbox drain thread's `push`, `set_webhook` from the CLI) is one plain
HTTPS call to the Bot API (`BotApi`, httpx with a timeout): it needs no event loop, so it works in
every worker, during start and shutdown and from the CLI, and a slow Bot API never blocks the
server's loop. Every uvicorn worker runs its own application; Telegram's retries of an update that
reaches another worker are caught by the shared claim. `run_polling` (policybot telegram poll) runs
the same handlers with PTB's updater for development. The Bot API base URL is configurable so tests
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
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
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


def reply_keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The buttons under a reply's last piece: the rating of a staff reply, else its suggestions."""
    return rating_keyboard(reply.rate_ticket) if reply.rate_ticket else keyboard(reply.suggestions)


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
        timeout: float = 10.0,
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
        self._start_lock = asyncio.Lock()
        self.api = BotApi(token=token, api_base=self.api_base, timeout=timeout)

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
        for name in ("subscribe", "unsubscribe", "subscriptions"):  # bot/subscribe_talk.py reads them
            app.add_handler(CommandHandler(name, self._on_subscription, filters=private))
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
                markup = reply_keyboard(reply) if i == len(pieces) - 1 else None
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

    async def _on_subscription(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg, chat = update.effective_message, update.effective_chat
        if msg is None or chat is None or not msg.text:
            return
        await self._ask(context.bot, chat.id, msg.text[:200], {"command": "subscription"})

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

    # --- lifespan: PTB on the server's loop --------------------------------------------------------
    async def ensure_started(self) -> None:
        """Initialize (getMe) and start the application once; raises while the Bot API is away."""
        async with self._start_lock:
            if self.application.running:
                return
            await asyncio.wait_for(self.application.initialize(), self.timeout)
            await self.application.start()
            log.info("telegram_started bot=%s", self.application.bot.username)

    async def _start_in_background(self) -> None:
        try:
            await self.ensure_started()
        except Exception as exc:  # the webhook tries again on the next update
            log.warning("telegram_start_failed error=%s (retried on the next update)", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Entered by the app's lifespan: start PTB without delaying the server; on exit finish the
        updates being handled (Application.stop waits for them) and close its HTTP client."""
        starting = asyncio.create_task(self._start_in_background())
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await self.stop()

    async def stop(self) -> None:
        try:
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()
        except Exception:
            log.exception("telegram_stop_failed")

    def close(self) -> None:
        """Release the synchronous Bot API client (the application is stopped by `lifespan`)."""
        self.api.close()

    # --- push and admin: plain HTTPS from synchronous code ------------------------------------------
    def push(self, user_id: str, reply: Reply) -> None:
        try:
            chat_id = int(user_id)
        except ValueError:
            raise PushImpossible(f"not a Telegram chat id: {user_id[:20]!r}") from None
        pieces = split_text(reply.text)
        for i, piece in enumerate(pieces):
            params: dict[str, Any] = {"chat_id": chat_id, "text": piece}
            markup = reply_keyboard(reply) if i == len(pieces) - 1 else None
            if markup is not None:
                params["reply_markup"] = markup.to_dict()
            try:
                self.api.call("sendMessage", params)
            except BotApiError as exc:
                if exc.code in (400, 403):  # blocked by the user, chat not found: retrying will not help
                    raise PushImpossible(f"Telegram refused: {exc.description}") from None
                raise

    def set_webhook(self, url: str) -> bool:
        if not self.webhook_secret:
            raise ValueError("POLICYBOT_TELEGRAM_WEBHOOK_SECRET must be set before registering a webhook")
        params = {
            "url": url,
            "secret_token": self.webhook_secret,
            "allowed_updates": ["message", "callback_query"],
        }
        return bool(self.api.call("setWebhook", params))

    def delete_webhook(self) -> bool:
        return bool(self.api.call("deleteWebhook", {}))

    def run_polling(self) -> None:
        """Development mode: long polling with PTB's updater (deletes any webhook first); blocks."""
        self.build_application(polling=True).run_polling(allowed_updates=["message", "callback_query"])

    # --- webhook -----------------------------------------------------------------------------------------
    def _claim(self, update_id: int) -> bool:
        """True the first time this update arrives (Telegram retries a webhook that did not answer)."""
        return self.inbox.claim_once(self.name, f"update:{update_id}")

    async def receive(self, request: Request, secret_header: str | None) -> JSONResponse:
        """The webhook: secret, size and shape checks, dedup, then onto PTB's update queue."""
        if not self.webhook_secret:
            return JSONResponse({"detail": "未启用"}, 404)
        if not hmac.compare_digest((secret_header or "").encode(), self.webhook_secret.encode()):
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
            await self.ensure_started()
        except Exception as exc:
            log.error("telegram_start_failed error=%s", type(exc).__name__)
            return JSONResponse({"detail": "unavailable"}, 503, headers={"Retry-After": "5"})
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception:
            return JSONResponse({"detail": "bad update"}, 400)
        if not await run_in_threadpool(self._claim, update.update_id):
            return JSONResponse({"ok": True, "duplicate": True})
        await self.application.update_queue.put(update)
        return JSONResponse({"ok": True})

    def router(self) -> APIRouter:
        api = APIRouter(tags=["telegram"])

        @api.post("/telegram/webhook", summary="Telegram Bot API webhook")
        async def webhook(
            request: Request,
            x_telegram_bot_api_secret_token: Annotated[str | None, Header(max_length=256)] = None,
        ) -> JSONResponse:
            return await self.receive(request, x_telegram_bot_api_secret_token)

        return api


class BotApiError(Exception):
    """The Bot API said no (`ok: false`) or answered with an HTTP error; no URL (it holds the token)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


class BotApi:
    """Synchronous Bot API calls (`POST {base}/bot{token}/{method}` with a JSON body), thread-safe."""

    def __init__(self, *, token: str, api_base: str, timeout: float) -> None:
        self.url = f"{api_base}/bot{token}/"
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def call(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout)
            client = self._client
        try:
            resp = client.post(self.url + method, json=params)
        except httpx.HTTPError as exc:  # its message never names the URL; the class says enough
            raise BotApiError(503, f"unreachable ({type(exc).__name__})") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BotApiError(resp.status_code if resp.status_code >= 400 else 502, "not a Bot API answer")
        if not data.get("ok"):
            code = data.get("error_code")
            raise BotApiError(
                code if isinstance(code, int) else resp.status_code, str(data.get("description", ""))[:200]
            )
        return data.get("result")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def enabled(settings: Any, *, inbox: Inbox, sessions: sessionmaker[Session]) -> list[TelegramChannel]:
    """The channel when POLICYBOT_TELEGRAM_TOKEN is set, else nothing (for the channel list in app.py)."""
    if not settings.telegram_token:
        return []
    return [TelegramChannel.from_settings(settings, inbox=inbox, sessions=sessions)]
