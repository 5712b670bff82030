"""The website channel: the versioned JSON API under /api/v1 that the embeddable widget uses and
that other systems (12345 agent desktop, 一网通办 app) can integrate with the same way.

Anonymous visitors get a signed session id (itsdangerous); the user id inside it keys the
conversation, tickets and pushes, so one visitor cannot read another's conversation or ticket.
Later replies (staff answers) go to the outbox table and the widget polls /api/v1/messages.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import texts
from bot.channels.web_subscriptions import add_routes as add_subscription_routes
from bot.conversation import Incoming, Reply
from bot.models import Outbox
from bot.pipeline.inbox import Inbox
from bot.ratelimit import RateLimiter
from knowledge.db import MAX_ID
from knowledge.errors import NotFound, PolicybotError

log = logging.getLogger("policybot.web")
SESSION_MAX_AGE = 7 * 24 * 3600


class WidgetTextsOut(BaseModel):
    texts: dict[str, str] = Field(description="The widget's sentences by key (bot/texts.py `widget.*`)")


class SourceOut(BaseModel):
    title: str
    doc_no: str | None = None
    article: str | None = None
    status: str | None = None
    url: str | None = None
    policy_id: str | None = None


class ReplyOut(BaseModel):
    kind: Literal[
        "answer", "clarify", "passage", "handoff_offer", "ticket_opened", "ticket_queued", "status", "text"
    ]
    text: str
    suggestions: list[str] = []
    faq_id: str | None = None
    ticket_no: str | None = None
    sources: list[SourceOut] = []
    ref: str | None = Field(None, description="Id of this answer for POST /api/v1/rate")
    form: Literal["handoff"] | None = Field(None, description="'handoff': show the leave-a-message form")
    question: str | None = Field(None, description="Question to prefill in the form")
    category: Literal["咨询", "建议", "投诉", "求助", "举报"] | None = Field(
        None, description="The form's preset category"
    )
    rate_ticket: str | None = Field(
        None, description="A staff reply of this ticket can be rated here: POST /api/v1/tickets/{no}/rate"
    )


class ChatIn(BaseModel):
    session: str | None = Field(None, max_length=400, description="Session id from a previous reply, or null")
    text: str = Field(..., max_length=2000, description="The citizen's message")


class ChatOut(BaseModel):
    session: str
    replies: list[ReplyOut]


class SessionIn(BaseModel):
    site: str | None = Field(None, max_length=100)


class RateIn(BaseModel):
    session: str = Field(..., max_length=400)
    ref: str = Field(..., max_length=40)
    rating: Literal["useful", "useless"]


class RateOut(BaseModel):
    ok: bool
    text: str
    reply: ReplyOut | None = Field(
        None, description="What follows the rating (没用: next-best FAQs and the form)"
    )


class TicketRateIn(BaseModel):
    session: str = Field(..., max_length=400)
    rating: Literal["满意", "基本满意", "不满意"]


class TicketIn(BaseModel):
    session: str = Field(..., max_length=400)
    question: str = Field(..., min_length=1, max_length=500)
    name: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=30)
    consent: bool = False
    idempotency_key: str | None = Field(None, max_length=80, description="Same key: same ticket on retry")
    category: Literal["咨询", "建议", "投诉", "求助", "举报"] = "咨询"


class TicketOut(BaseModel):
    ticket_no: str | None = Field(None, description="None while queued (database maintenance)")
    status: str
    due_date: str | None = None
    text: str
    verify_code: str | None = None
    queued: bool = Field(False, description="Received during maintenance (202): the number is pushed later")


class TicketStatusOut(BaseModel):
    ticket_no: str
    status: str
    question: str
    due_date: str
    reply: str | None = None
    replied_at: str | None = None


class MessagesOut(BaseModel):
    cursor: int
    replies: list[ReplyOut]


def _out(r: Reply) -> ReplyOut:
    return ReplyOut.model_validate(r.as_dict())


class WebChannel:
    name = "web"

    def __init__(
        self,
        *,
        inbox: Inbox,
        sessions: sessionmaker[Session],
        secret: str,
        limiter: RateLimiter,
    ) -> None:
        self.inbox = inbox
        self.tickets = inbox.tickets
        self.sessions = sessions
        self.signer = URLSafeTimedSerializer(secret, salt="policybot-widget-session")
        self.limiter = limiter

    # --- sessions ---------------------------------------------------------------------------------
    def new_session(self) -> tuple[str, str]:
        user_id = "w" + secrets.token_urlsafe(12)
        return self.signer.dumps(user_id), user_id

    def user_of(self, token: str) -> str:
        try:
            value = self.signer.loads(token, max_age=SESSION_MAX_AGE)
        except SignatureExpired:
            raise HTTPException(401, "会话已过期，请重新开始对话。") from None
        except BadSignature:
            raise HTTPException(403, "会话无效，请重新开始对话。") from None
        if not isinstance(value, str):
            raise HTTPException(403, "会话无效，请重新开始对话。")
        return value

    # --- push -------------------------------------------------------------------------------------
    def push(self, user_id: str, reply: Reply) -> None:
        with self.sessions.begin() as s:
            s.add(Outbox(channel=self.name, user_id=user_id, reply=reply.as_dict()))

    # --- the API's operations (the routes below only declare them) ---------------------------------
    def start_session(self) -> ChatOut:
        token, user_id = self.new_session()
        replies = self.inbox.receive(Incoming(self.name, user_id, "", kind="welcome")).replies
        return ChatOut(session=token, replies=[_out(r) for r in replies])

    def chat(self, body: ChatIn) -> ChatOut:
        if body.session:
            token, user_id = body.session, self.user_of(body.session)
        else:
            token, user_id = self.new_session()
        self.limiter.check_key("session:" + user_id)
        replies = self.inbox.receive(Incoming(self.name, user_id, body.text)).replies
        return ChatOut(session=token, replies=[_out(r) for r in replies])

    def rate(self, body: RateIn) -> RateOut:
        user_id = self.user_of(body.session)
        reply, ok = self.inbox.rate_answer(self.name, user_id, body.ref, body.rating)
        follow = _out(reply) if body.rating == "useless" and reply.kind == "handoff_offer" else None
        return RateOut(ok=ok, text=reply.text.split("\n", 1)[0], reply=follow)

    def rate_ticket(self, ticket_no: str, body: TicketRateIn) -> RateOut:
        user_id = self.user_of(body.session)
        reply, ok = self.inbox.rate_ticket(self.name, user_id, ticket_no.strip().upper(), body.rating)
        return RateOut(ok=ok, text=reply.text)

    def open_ticket(self, body: TicketIn, response: Response) -> TicketOut:
        user_id = self.user_of(body.session)
        self.limiter.check_key("session:" + user_id)
        try:
            reply = self.inbox.open_ticket(
                self.name,
                user_id,
                question=body.question,
                name=body.name,
                phone=body.phone,
                consent=body.consent,
                idempotency_key=body.idempotency_key,
                category=body.category,
            )
        except PolicybotError as exc:
            raise HTTPException(422, exc.user_message) from None
        if reply.kind == "ticket_queued":
            response.status_code = 202
            return TicketOut(status="已收到", text=reply.text, queued=True)
        if reply.kind != "ticket_opened":
            raise HTTPException(422, reply.text)
        t = self.tickets.get(reply.ticket_no or "")
        return TicketOut(
            ticket_no=t.no,
            status=t.status,
            due_date=t.due_date.isoformat(),
            text=reply.text,
            verify_code=getattr(t, "verify_code", None),
        )

    def ticket_status(self, ticket_no: str, session: str) -> TicketStatusOut:
        user_id = self.user_of(session)
        try:
            t = self.tickets.get(ticket_no.strip().upper())
        except NotFound:
            t = None
        if t is None or t.channel != self.name or t.user_ref != user_id:
            raise HTTPException(404, "没有找到该留言。")
        return TicketStatusOut(
            ticket_no=t.no,
            status=t.status,
            question=t.question,
            due_date=t.due_date.isoformat(),
            reply=t.reply,
            replied_at=t.replied_at.isoformat() if t.replied_at else None,
        )

    def messages(self, session: str, after: int) -> MessagesOut:
        user_id = self.user_of(session)
        with self.sessions() as s:
            rows = list(
                s.scalars(
                    select(Outbox)
                    .where(Outbox.channel == self.name, Outbox.user_id == user_id, Outbox.id > after)
                    .order_by(Outbox.id)
                    .limit(50)
                )
            )
        cursor = rows[-1].id if rows else after
        return MessagesOut(cursor=cursor, replies=[ReplyOut.model_validate(r.reply) for r in rows])

    # --- routes -----------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        """/api/v1: every route rate-limited per client IP, then one of the operations above."""
        channel = self

        def limited(request: Request) -> None:
            channel.limiter.check_ip(request)

        api = APIRouter(prefix="/api/v1", tags=["chat"], dependencies=[Depends(limited)])

        @api.get(
            "/widget/texts", response_model=WidgetTextsOut, summary="The widget's own labels and messages"
        )
        def widget_texts(response: Response) -> WidgetTextsOut:
            # the same for every visitor and fixed while the server runs: cached by browsers for 5 minutes
            response.headers["Cache-Control"] = "public, max-age=300"
            return WidgetTextsOut(texts=texts.widget_texts())

        @api.post("/sessions", response_model=ChatOut, summary="Start a conversation (welcome message)")
        def start(body: SessionIn | None = None) -> ChatOut:
            return channel.start_session()

        @api.post("/chat", response_model=ChatOut, summary="Send a message, get the replies")
        def chat(body: ChatIn) -> ChatOut:
            return channel.chat(body)

        @api.post("/rate", response_model=RateOut, summary="Rate an answer (有用 / 没用)")
        def rate(body: RateIn) -> RateOut:
            return channel.rate(body)

        @api.post(
            "/tickets/{ticket_no}/rate",
            response_model=RateOut,
            summary="Rate a staff reply where it arrived (满意 / 基本满意 / 不满意; 不满意 reopens)",
        )
        def rate_ticket(ticket_no: Annotated[str, Path(max_length=40)], body: TicketRateIn) -> RateOut:
            return channel.rate_ticket(ticket_no, body)

        @api.post("/tickets", response_model=TicketOut, summary="Leave a message (政策留言)")
        def open_ticket(body: TicketIn, response: Response) -> TicketOut:
            return channel.open_ticket(body, response)

        @api.get("/tickets/{ticket_no}", response_model=TicketStatusOut, summary="Status of one's own ticket")
        def ticket_status(ticket_no: str, session: Annotated[str, Query(max_length=400)]) -> TicketStatusOut:
            return channel.ticket_status(ticket_no, session)

        @api.get("/messages", response_model=MessagesOut, summary="Later replies (poll)")
        def messages(
            session: Annotated[str, Query(max_length=400)], after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
        ) -> MessagesOut:
            return channel.messages(session, after)

        add_subscription_routes(api, channel)  # GET/PUT /api/v1/subscriptions (the widget's checkboxes)
        return api


def api_key_dependency(expected: str | None) -> Any:
    def check(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if not expected:
            raise HTTPException(404, "未启用")
        # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, i.e. a 500)
        if not x_api_key or not secrets.compare_digest(x_api_key.encode(), expected.encode()):
            raise HTTPException(401, "API key 无效")

    return check
