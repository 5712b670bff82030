"""A fake of the WeChat Official Account API (the parts policybot calls): /cgi-bin/token,
message/custom/send (customer-service messages), message/template/send and
message/subscribe/bizsend (refused with errcode 43101, like WeChat, for a user who did not accept
the notice: `refused_notices`). It issues access tokens, rejects unknown or revoked ones with errcode
40001 like WeChat, records every message in `state`, and can be told to fail the next N calls
(HTTP 500 or a given errcode) to exercise retries."""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class FakeWeChatState:
    app_id: str = "wx_test_app"
    secret: str = "test-app-secret"
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)  # customer-service messages
    notices: list[dict[str, Any]] = field(default_factory=list)  # template / subscribe notices
    fail_next: list[int | str] = field(default_factory=list)  # errcode ints, or "http" for a 500
    refused_notices: set[str] = field(default_factory=set)  # openids that did not accept 订阅通知 (43101)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def texts_to(self, openid: str) -> list[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.messages if m.get("touser") == openid]


def create_fake_wechat() -> FastAPI:
    app = FastAPI(title="fake WeChat API")
    st = FakeWeChatState()
    app.state.fake = st

    @app.get("/cgi-bin/token")
    def token(grant_type: str = "", appid: str = "", secret: str = "") -> JSONResponse:
        with st.lock:
            st.token_requests += 1
            if grant_type != "client_credential" or appid != st.app_id or secret != st.secret:
                return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
            tok = "ACCESS_" + secrets.token_hex(8)
            st.tokens.add(tok)
        return JSONResponse({"access_token": tok, "expires_in": 7200})

    async def _authorised(request: Request) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        with st.lock:
            if st.fail_next:
                failure = st.fail_next.pop(0)
                if failure == "http":
                    return None, JSONResponse({"error": "internal"}, 500)
                return None, JSONResponse({"errcode": failure, "errmsg": "injected failure"})
            if request.query_params.get("access_token") not in st.tokens:
                return None, JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        try:
            body = await request.json()
        except ValueError:
            return None, JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        return body, None

    @app.post("/cgi-bin/message/custom/send")
    async def custom_send(request: Request) -> JSONResponse:
        body, error = await _authorised(request)
        if error is not None:
            return error
        assert body is not None
        if body.get("msgtype") != "text" or not isinstance(body.get("text", {}).get("content"), str):
            return JSONResponse({"errcode": 44002, "errmsg": "empty post data"})
        if len(body["text"]["content"].encode()) > 2048:
            return JSONResponse({"errcode": 45002, "errmsg": "content size out of limit"})
        with st.lock:
            st.messages.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @app.post("/cgi-bin/message/template/send")
    async def template_send(request: Request) -> JSONResponse:
        body, error = await _authorised(request)
        if error is not None:
            return error
        assert body is not None
        with st.lock:
            st.notices.append({"kind": "template", **body})
            msgid = next(st.counter)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @app.post("/cgi-bin/message/subscribe/bizsend")
    async def subscribe_send(request: Request) -> JSONResponse:
        body, error = await _authorised(request)
        if error is not None:
            return error
        assert body is not None
        with st.lock:
            if body.get("touser") in st.refused_notices:
                return JSONResponse({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
            st.notices.append({"kind": "subscribe", **body})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    return app
