"""A small fake of the web chat API v1 (api-contract.md) for the widget's browser tests.

It serves ``bot/static`` and the demo template like the real app and answers with canned
behaviour chosen by keywords: 公开 -> an answer with a source and a rating ref; 社保 -> clarify
with three suggestions; text containing ``<`` -> an answer echoing the text (XSS probe, with a
``javascript:`` source URL); anything else -> a passage plus a handoff offer with the form. A
ticket makes a staff reply available to ``/api/v1/messages`` polling. ``/host`` renders a bare,
hostile-CSS host page whose query parameters become the script tag's data attributes. The widget's
own texts are the real ones (bot/texts.py `widget.*`).
Everything the widget sent is kept in ``app.state.fake`` for assertions.
"""

from __future__ import annotations

import html
import itertools
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bot import texts

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"

SOURCE = {
    "title": "中华人民共和国政府信息公开条例",
    "doc_no": "国务院令第711号",
    "article": "第三十三条",
    "url": "https://www.gov.cn/zhengce/content/2019-04/15/content_5382991.htm",
    "status": "有效",
}
CLARIFY = ["灵活就业人员如何参加社保？", "社保卡丢失怎么补办？", "社保缴费基数是多少？"]


@dataclass
class FakeState:  # what the widget sent, and the canned replies waiting to be polled
    sessions: set[str] = field(default_factory=set)
    refs: dict[str, str] = field(default_factory=dict)  # ref -> session
    ratings: list[dict[str, Any]] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    queued: list[dict[str, Any]] = field(default_factory=list)  # received during "maintenance"
    pushes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # session -> replies
    polls: int = 0
    texts_calls: int = 0
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _reply(kind: str, text: str, **extra: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "kind": kind,
        "text": text,
        "suggestions": [],
        "sources": [],
        "faq_id": None,
        "ticket_no": None,
        "ref": None,
        "form": None,
    }
    reply.update(extra)
    return reply


def create_fake_app() -> FastAPI:
    app = FastAPI(title="policybot fake web API")
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    st = FakeState()
    app.state.fake = st
    templates = Jinja2Templates(directory=str(BOT_DIR / "templates"))
    app.mount("/static", StaticFiles(directory=str(BOT_DIR / "static")), name="static")

    def check(session: Any) -> str:
        if not isinstance(session, str) or session not in st.sessions:
            raise HTTPException(401, "会话已过期，请重新开始咨询")
        return session

    def new_session() -> str:
        sid = "s." + secrets.token_urlsafe(12)
        st.sessions.add(sid)
        st.pushes[sid] = []
        return sid

    def new_ref(session: str) -> str:
        ref = f"r{next(st.counter)}"
        st.refs[ref] = session
        return ref

    @app.get("/", response_class=HTMLResponse)
    def demo(request: Request) -> HTMLResponse:
        ctx = {k: request.query_params.get(k) for k in ("poll_ms", "api_base", "widget_open")}
        return templates.TemplateResponse(request, "demo.html", ctx)

    @app.get("/host", response_class=HTMLResponse)
    def host(request: Request) -> str:
        attrs = "".join(f' data-{html.escape(k)}="{html.escape(v)}"' for k, v in request.query_params.items())
        return (
            "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<style>* { color: red !important; font-size: 40px; } button { display: none; }"
            " div { border: 5px solid lime; }</style></head>"
            "<body><h1>宿主页面</h1><p><a id='first-link' href='#'>页面链接</a></p>"
            f"<script src='/static/widget.js'{attrs}></script></body></html>"
        )

    @app.post("/_test/expire")
    def expire() -> dict[str, bool]:
        st.sessions.clear()
        return {"ok": True}

    @app.get("/api/v1/widget/texts")
    def widget_texts() -> dict[str, Any]:
        st.texts_calls += 1
        return {"texts": texts.widget_texts()}

    @app.post("/api/v1/sessions")
    def sessions(body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
        welcome = _reply(
            "text",
            "您好！我是政策咨询智能助手，请直接输入您的问题。",
            suggestions=["依申请公开多久答复？", "社保怎么交？"],
        )
        return {"session": new_session(), "replies": [welcome]}

    @app.post("/api/v1/chat")
    def chat(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise HTTPException(422, "请输入您的问题")
        session = check(body.get("session") or new_session())
        st.chats.append({"session": session, "text": text})
        if "<" in text:
            probe = {**SOURCE, "title": text, "url": "javascript:alert(1)"}
            replies = [_reply("answer", f"您的问题是：{text}", sources=[probe], ref=new_ref(session))]
        elif "公开" in text:
            replies = [
                _reply(
                    "answer",
                    "不能当场答复的，应当自收到申请之日起20个工作日内予以答复。详见 https://www.gov.cn/zhengce/ 。",
                    sources=[SOURCE],
                    faq_id="faq-1",
                    ref=new_ref(session),
                )
            ]
        elif text in CLARIFY:
            replies = [
                _reply("answer", f"关于“{text}”：请携带身份证到社保经办窗口办理。", ref=new_ref(session))
            ]
        elif "社保" in text:
            replies = [_reply("clarify", "您想咨询的是以下哪个问题？", suggestions=CLARIFY)]
        else:
            passage = "未找到完全匹配的答案，以下政策条款可能相关：第十条 行政机关应当主动公开本行政机关的政府信息。"
            replies = [
                _reply(
                    "passage",
                    passage,
                    sources=[{**SOURCE, "article": "第十条", "url": None}],
                    ref=new_ref(session),
                ),
                _reply(
                    "handoff_offer",
                    "如需人工答复，请留言。",
                    suggestions=["留言"],
                    form="handoff",
                    question=text,
                ),
            ]
        return {"session": session, "replies": replies}

    @app.post("/api/v1/rate")
    def rate(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        session = check(body.get("session"))
        if st.refs.get(str(body.get("ref"))) != session or body.get("rating") not in ("useful", "useless"):
            raise HTTPException(422, "评价无效")
        st.ratings.append(body)
        return {"ok": True, "text": "感谢您的评价"}

    @app.post("/api/v1/tickets")
    def tickets(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        session = check(body.get("session"))
        question = str(body.get("question") or "")
        if (body.get("name") or body.get("phone")) and body.get("consent") is not True:
            raise HTTPException(422, "填写联系方式须同意个人信息处理说明")
        if "违禁" in question:
            raise HTTPException(422, "留言内容含有不当信息，请修改后再提交")
        if "维护" in question:  # the real API's answer while its database is away (202)
            st.queued.append({**body, "session": session})
            return {
                "ticket_no": None,
                "status": "已收到",
                "due_date": None,
                "queued": True,
                "text": "您的留言已收到。系统正在维护，恢复后将生成留言编号并在这里通知您，请勿重复提交。",
            }
        key = body.get("idempotency_key")
        same = [n for n, t in st.tickets.items() if key and t.get("idempotency_key") == key]
        no = same[0] if same else f"LY20261123-{len(st.tickets) + 1:04d}"
        if not same:
            st.tickets[no] = {**body, "session": session}
            staff = _reply(
                "text", f"您的留言 {no} 已答复：请于工作日到政务服务中心3号窗口办理。", ticket_no=no
            )
            st.pushes[session].append(staff)
        return {
            "ticket_no": no,
            "status": "待受理",
            "due_date": "2026-12-21",
            "text": f"留言已收到，编号 {no}，我们将在20个工作日内答复。",
            "verify_code": "834201",
        }

    @app.get("/api/v1/tickets/{ticket_no}")
    def ticket(ticket_no: str, session: str) -> dict[str, Any]:
        check(session)
        t = st.tickets.get(ticket_no)
        if not t or t["session"] != session:
            raise HTTPException(404, "未找到该留言")
        return {
            "ticket_no": ticket_no,
            "status": "已答复",
            "question": t.get("question"),
            "due_date": "2026-12-21",
            "reply": "请于工作日到政务服务中心3号窗口办理。",
            "replied_at": "2026-11-24 10:00",
        }

    @app.get("/api/v1/messages")
    def messages(session: str, after: int = 0) -> dict[str, Any]:
        check(session)
        st.polls += 1
        pushes = st.pushes[session]
        return {"cursor": len(pushes), "replies": pushes[after:]}

    return app
