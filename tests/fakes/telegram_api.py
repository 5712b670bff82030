"""A fake of the Telegram Bot API (the methods policybot calls): getMe, sendMessage,
answerCallbackQuery, setWebhook, deleteWebhook, getWebhookInfo, getUpdates. Requests are parsed
like Telegram does (form fields whose values are JSON, or a JSON body), every call is recorded in
`state.calls`, unknown tokens get 401, chats listed in `state.blocked` get 403 (bot blocked), and
`state.fail_next` makes the next calls fail (HTTP status codes) to exercise retries. Updates put in
`state.updates` are served by getUpdates (polling mode)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

BOT_USER = {"id": 424242, "is_bot": True, "first_name": "政策咨询", "username": "policy_test_bot"}


@dataclass
class FakeTelegramState:
    token: str = "424242:TEST-token"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    fail_next: list[int] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                p
                for m, p in self.calls
                if m == "sendMessage" and (chat_id is None or p["chat_id"] == chat_id)
            ]

    def methods(self) -> list[str]:
        with self.lock:
            return [m for m, _ in self.calls]


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def create_fake_telegram() -> FastAPI:
    app = FastAPI(title="fake Telegram Bot API")
    st = FakeTelegramState()
    app.state.fake = st

    def ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    def error(code: int, description: str) -> JSONResponse:
        return JSONResponse({"ok": False, "error_code": code, "description": description}, code)

    @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
    async def call(token: str, method: str, request: Request) -> JSONResponse:
        if token != st.token:
            return error(401, "Unauthorized")
        params: dict[str, Any] = {}
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            params = dict(await request.json())
        elif request.method == "POST":
            form = await request.form()
            params = {k: _decode(v) if isinstance(v, str) else v for k, v in form.items()}
        params.update({k: _decode(v) for k, v in request.query_params.items()})
        with st.lock:
            st.calls.append((method, params))
            failure = st.fail_next.pop(0) if st.fail_next and method == "sendMessage" else None
        if failure is not None:
            return error(failure, "Internal Server Error" if failure >= 500 else "Bad Request: injected")
        if method == "getMe":
            return ok(BOT_USER)
        if method == "sendMessage":
            chat_id = params.get("chat_id")
            if not isinstance(chat_id, int) or not params.get("text"):
                return error(400, "Bad Request: chat_id and text are required")
            if chat_id in st.blocked:
                return error(403, "Forbidden: bot was blocked by the user")
            if len(str(params["text"])) > 4096:
                return error(400, "Bad Request: message is too long")
            message: dict[str, Any] = {
                "message_id": next(st.ids),
                "date": int(time.time()),
                "from": BOT_USER,
                "chat": {"id": chat_id, "type": "private"},
                "text": params["text"],
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return ok(message)
        if method == "answerCallbackQuery":
            return ok(True)
        if method == "setWebhook":
            with st.lock:
                st.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
            return ok(True)
        if method == "deleteWebhook":
            with st.lock:
                st.webhook = {}
            return ok(True)
        if method == "getWebhookInfo":
            return ok(
                {"url": st.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
            )
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            with st.lock:
                pending = [u for u in st.updates if u["update_id"] >= offset]
            if not pending:
                await asyncio.sleep(0.05)
            return ok(pending)
        return error(404, "Not Found: method not found")

    return app
