"""The 12345 / 12333 hotline bridge: an outbound channel to an external hotline system (政务服务便民热线).

Out: every new ticket becomes one outbox row (`forward_new_tickets` hooks the ticket service; the row
is written in the ticket's own transaction, keyed ``hotline_ticket:<no>`` so no ticket is queued
twice). The outbox drains it through `HotlineChannel.push`, which POSTs the JSON body (rendered by
`bot.notifier.render_delivery`) with an HMAC-SHA256 signature over ``"<timestamp>." + body``; a
non-2xx answer raises, so the outbox retries with backoff, and a 4xx other than 408/429 is
`PushImpossible` (recorded once, never retried). Personal data: the question is stored masked; the
contact data (given with consent) is sent as POLICYBOT_HOTLINE_CONTACT allows (masked by default).

In: the hotline system POSTs its reply to /api/v1/hotline/callback, signed the same way. The
timestamp must lie within five minutes, the signature is compared in constant time and each signature
is accepted once (the inbox's dedup table), so a captured request cannot be replayed. A valid reply
answers the ticket through `TicketService.reply` (the citizen's message goes through the outbox like
any staff reply), closes it (已办结) and writes an audit entry; the actor is POLICYBOT_HOTLINE_NAME.
Every refusal is a JSON `HotlineError` with a Chinese `detail` and a stable `code`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot import texts
from bot.channels.hotline_models import (
    CALLBACK_PATH,
    EVENT_HEADER,
    MAX_SKEW_SECONDS,
    SIGNATURE_HEADER,
    TICKET_CREATED,
    TIMESTAMP_HEADER,
    HotlineCallback,
    HotlineCallbackResult,
    HotlineContact,
    HotlineError,
    HotlineTicketEvent,
    sign,
    signature_matches,
)
from bot.conversation import Reply
from bot.models import InboundMessage
from bot.notifier import HOTLINE_TICKET, PushImpossible
from bot.pipeline.inbox import Inbox
from bot.pipeline.outbox import Outbox
from handoff import clientip
from handoff.console.audit import AuditLog
from handoff.privacy import mask
from handoff.tickets import CLOSED, REPLIED, TicketService, TicketView
from knowledge.errors import Conflict, NotFound, PolicybotError
from knowledge.models import CHINA_TZ, utcnow

log = logging.getLogger("policybot.hotline")

NAME = "hotline"
CLEANUP_EVERY = 600.0  # seconds between deletions of old signature claims
CLAIM_KEEP = dt.timedelta(days=1)  # far longer than the freshness window
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")


class HotlineUnavailable(Exception):
    """The hotline system did not take the webhook this time (network, 5xx, 408, 429): retried."""


@dataclass(frozen=True)
class HotlineConfig:
    webhook_url: str | None
    secret: str | None
    name: str
    contact: str
    timeout: float
    callback_url: str | None
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> HotlineConfig:
        url = (settings.hotline_webhook_url or "").strip() or None
        secret = settings.hotline_secret or None
        if url and not _URL.fullmatch(url):
            raise PolicybotError(
                f"POLICYBOT_HOTLINE_WEBHOOK_URL 应写成 https://hotline.example.gov.cn/... 的形式：{url}",
                "bad POLICYBOT_HOTLINE_WEBHOOK_URL",
            )
        if url and not secret:
            raise PolicybotError(
                "已设置 POLICYBOT_HOTLINE_WEBHOOK_URL，但未设置签名密钥 POLICYBOT_HOTLINE_SECRET",
                "hotline webhook without POLICYBOT_HOTLINE_SECRET",
            )
        base = settings.public_base_url
        return cls(
            webhook_url=url,
            secret=secret,
            name=settings.hotline_name.strip(),
            contact=settings.hotline_contact,
            timeout=settings.hotline_timeout,
            callback_url=f"{base}{CALLBACK_PATH}" if base else None,
            trusted_proxies=tuple(settings.trusted_proxies),
        )


# --- out: new tickets -------------------------------------------------------------------------------
def _masked_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def _masked_phone(phone: str) -> str:
    masked = mask(phone)
    return masked if masked != phone else "*" * max(0, len(phone) - 4) + phone[-4:]


def _contact(ticket: TicketView, policy: str) -> HotlineContact | None:
    name, phone = ticket.contact_name, ticket.contact_phone
    if policy == "none" or not (name or phone):
        return None
    if policy == "masked":
        return HotlineContact(
            name=_masked_name(name) if name else None, phone=_masked_phone(phone) if phone else None
        )
    return HotlineContact(name=name, phone=phone)


def ticket_event(ticket: TicketView, config: HotlineConfig) -> HotlineTicketEvent:
    """The webhook body of a new ticket, as the settings allow."""
    return HotlineTicketEvent(
        event=TICKET_CREATED,
        event_id=f"{HOTLINE_TICKET}:{ticket.no}",
        ticket_no=ticket.no,
        created_at=ticket.created_at.astimezone(CHINA_TZ),
        due_date=ticket.due_date,
        department=ticket.department,
        category=ticket.category,
        question=mask(ticket.question),  # stored masked already; masking is idempotent
        channel=ticket.channel,
        contact=_contact(ticket, config.contact),
        callback_url=config.callback_url,
    )


def forward_new_tickets(settings: Any, tickets: TicketService, outbox: Outbox) -> None:
    """With a webhook configured, queue every new ticket for the hotline in its own transaction."""
    config = HotlineConfig.from_settings(settings)
    if not config.webhook_url:
        return

    def enqueue(session: Session, ticket: TicketView) -> None:
        event = ticket_event(ticket, config)
        outbox.enqueue(
            session,
            kind=HOTLINE_TICKET,
            channel=NAME,
            user_id=ticket.no,
            data=event.model_dump(mode="json"),
            key=event.event_id,
        )

    tickets.add_open_hook(enqueue)


# --- the channel: push out, callback in --------------------------------------------------------------
class HotlineChannel:
    """The outbox's pusher for ``hotline`` rows and the owner of the callback route."""

    name = NAME

    def __init__(
        self,
        config: HotlineConfig,
        *,
        tickets: TicketService,
        inbox: Inbox,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.tickets = tickets
        self.inbox = inbox
        self.sessions = sessions
        self.audit = AuditLog(sessions)
        self.clock = clock
        self._transport = transport
        self._last_cleanup = 0.0
        self._cleanup_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Any, *, tickets: TicketService, inbox: Inbox, sessions: sessionmaker[Session]
    ) -> HotlineChannel:
        return cls(HotlineConfig.from_settings(settings), tickets=tickets, inbox=inbox, sessions=sessions)

    # --- out ------------------------------------------------------------------------------------
    def push(self, user_id: str, reply: Reply) -> None:
        """POST one rendered event; raise unless the hotline answered 2xx."""
        url, secret = self.config.webhook_url, self.config.secret
        if not url or not secret:
            raise PushImpossible("the hotline webhook is not configured on this server")
        body = reply.text.encode("utf-8")
        stamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            EVENT_HEADER: TICKET_CREATED,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(secret, stamp, body),
            "User-Agent": "policybot-hotline/1",
        }
        try:
            with httpx.Client(timeout=self.config.timeout, transport=self._transport) as client:
                response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HotlineUnavailable(f"{type(exc).__name__} posting to the hotline") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if 400 <= status < 500 and status not in (408, 429):
            raise PushImpossible(f"the hotline refused ticket {user_id}: HTTP {status}")
        raise HotlineUnavailable(f"the hotline answered HTTP {status}")

    # --- in -------------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(tags=["hotline"])
        error = {"model": HotlineError}

        @router.post(
            CALLBACK_PATH,
            summary="The hotline's (12345/12333) reply to a forwarded ticket",
            description=(
                "Signed like the webhook: `X-Policybot-Timestamp` (Unix seconds, within 5 minutes) and "
                '`X-Policybot-Signature: sha256=<hex HMAC-SHA256(POLICYBOT_HOTLINE_SECRET, "<timestamp>." + '
                "raw body)>`; each signature is accepted once. Answers and closes the ticket, pushes the "
                "reply to the citizen and writes an audit entry."
            ),
            response_model=HotlineCallbackResult,
            responses={
                401: {**error, "description": "Bad signature, stale timestamp or replayed request"},
                404: {**error, "description": "Unknown ticket, or the bridge is not configured"},
                409: {**error, "description": "The ticket was already answered"},
                422: {**error, "description": "The body is not a valid HotlineCallback"},
            },
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": HotlineCallback.model_json_schema()}},
                }
            },
        )
        async def hotline_callback(
            request: Request,
            x_policybot_timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
            x_policybot_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
        ) -> JSONResponse:
            body = await request.body()
            ip = clientip.client_ip(request, self.config.trusted_proxies)
            status, payload = await run_in_threadpool(
                self.handle_callback, body, x_policybot_timestamp, x_policybot_signature, ip
            )
            return JSONResponse(payload, status)

        return router

    def handle_callback(
        self, body: bytes, timestamp: str | None, signature: str | None, ip: str = ""
    ) -> tuple[int, dict[str, Any]]:
        """Check, then apply one callback: (HTTP status, JSON body)."""
        secret = self.config.secret
        if not secret:
            return _error(404, "disabled", texts.say("hotline.disabled"))
        stamp = (timestamp or "").strip()
        if not stamp.isdigit() or len(stamp) > 12:
            return _error(401, "stale_timestamp", texts.say("hotline.stale", seconds=MAX_SKEW_SECONDS))
        if not signature or not signature_matches(secret, stamp, body, signature):
            return _error(401, "bad_signature", texts.say("hotline.bad_signature"))
        if abs(self.clock() - int(stamp)) > MAX_SKEW_SECONDS:
            return _error(401, "stale_timestamp", texts.say("hotline.stale", seconds=MAX_SKEW_SECONDS))
        self._cleanup()
        if not self.inbox.claim_once(self.name, "sig:" + signature.strip().lower()[len("sha256=") :]):
            return _error(401, "replayed", texts.say("hotline.replayed"))
        try:
            callback = HotlineCallback.model_validate_json(body)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in e.get('loc', ())) or '请求体'}: {e.get('msg', '')}"
                for e in exc.errors()[:5]
            ]
            return _error(422, "bad_body", texts.say("hotline.bad_body", problems="；".join(problems)))
        return self._apply(callback, ip)

    def _apply(self, callback: HotlineCallback, ip: str) -> tuple[int, dict[str, Any]]:
        actor = self.config.name
        try:
            ticket = self.tickets.get(callback.ticket_no)
        except NotFound:
            return _error(404, "unknown_ticket", texts.say("hotline.unknown_ticket", no=callback.ticket_no))
        if ticket.status in (REPLIED, CLOSED):
            if ticket.replied_by == actor and (ticket.reply or "").strip() == callback.reply.strip():
                return 200, self._result(self._close(ticket), duplicate=True)  # a retried callback
            return _already(ticket)
        try:
            ticket = self.tickets.reply(
                ticket.no, staff=actor, text=callback.reply, expected_version=ticket.version
            )
        except Conflict:
            return _already(self.tickets.get(ticket.no))
        except PolicybotError as exc:
            return _error(422, "bad_body", texts.say("hotline.bad_body", problems=exc.user_message))
        ticket = self._close(ticket)
        self.audit.record(
            "hotline_reply",
            actor=actor,
            role=NAME,
            ip=ip,
            target=ticket.no,
            detail={
                "handler": callback.handler,
                "case_no": callback.case_no,
                "handled_at": callback.handled_at.isoformat() if callback.handled_at else None,
            },
        )
        log.info("hotline_reply no=%s actor=%s status=%s", ticket.no, actor, ticket.status)
        return 200, self._result(ticket, duplicate=False)

    def _close(self, ticket: TicketView) -> TicketView:
        if ticket.status != REPLIED:
            return ticket
        try:
            return self.tickets.close(ticket.no, by=self.config.name)
        except PolicybotError as exc:  # changed meanwhile (e.g. the citizen rated it): the reply stands
            log.warning("hotline_close_skipped no=%s: %s", ticket.no, exc.log_message)
            return self.tickets.get(ticket.no)

    @staticmethod
    def _result(ticket: TicketView, *, duplicate: bool) -> dict[str, Any]:
        return HotlineCallbackResult(
            ticket_no=ticket.no, status=ticket.status, duplicate=duplicate
        ).model_dump()

    def _cleanup(self) -> None:
        """Forget signature claims older than a day (a signature that old is refused as stale anyway)."""
        now = time.monotonic()
        if now - self._last_cleanup < CLEANUP_EVERY or not self._cleanup_lock.acquire(blocking=False):
            return
        try:
            self._last_cleanup = now
            with self.sessions.begin() as s:
                s.execute(
                    delete(InboundMessage).where(
                        InboundMessage.channel == self.name, InboundMessage.created_at < utcnow() - CLAIM_KEEP
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("hotline_cleanup_failed: %s", type(exc).__name__)
        finally:
            self._cleanup_lock.release()


def _error(status: int, code: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, HotlineError(detail=detail, code=code).model_dump()


def _already(ticket: TicketView) -> tuple[int, dict[str, Any]]:
    return _error(
        409, "already_answered", texts.say("hotline.already_answered", no=ticket.no, status=ticket.status)
    )


def document_webhook(app: FastAPI) -> None:
    """List the webhook body in the OpenAPI document (`webhooks`); nothing is served here."""

    @app.webhooks.post(
        "hotline-ticket-created",
        summary="A new ticket, POSTed to POLICYBOT_HOTLINE_WEBHOOK_URL",
        description=(
            "Signed with `X-Policybot-Timestamp` and `X-Policybot-Signature` as the callback; "
            "`X-Policybot-Event: ticket.created`. Answer 2xx to accept; 5xx, 408, 429 or no answer is "
            "retried with backoff, any other 4xx stops the retries."
        ),
        tags=["hotline"],
    )
    def hotline_ticket_created(
        body: HotlineTicketEvent,
        x_policybot_timestamp: Annotated[str, Header(alias=TIMESTAMP_HEADER)],
        x_policybot_signature: Annotated[str, Header(alias=SIGNATURE_HEADER)],
        x_policybot_event: Annotated[str, Header(alias=EVENT_HEADER)] = TICKET_CREATED,
    ) -> None:
        """Documentation only."""


__all__ = [
    "HotlineChannel",
    "HotlineConfig",
    "HotlineUnavailable",
    "document_webhook",
    "forward_new_tickets",
    "ticket_event",
]
