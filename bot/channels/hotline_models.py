"""The wire formats of the 12345 / 12333 hotline bridge (bot/channels/hotline.py), as pydantic models so
that the OpenAPI document shows exactly what is sent and accepted: `HotlineTicketEvent` (the webhook
body policybot POSTs for each new ticket, also listed under the document's `webhooks`),
`HotlineCallback` (the body the hotline system POSTs back with its reply), `HotlineCallbackResult` and
`HotlineError` (the callback's answers), and the HMAC-SHA256 signature scheme both directions share:
``X-Policybot-Signature: sha256=<hex of HMAC(secret, "<X-Policybot-Timestamp>." + raw body)>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIGNATURE_HEADER = "X-Policybot-Signature"
TIMESTAMP_HEADER = "X-Policybot-Timestamp"
EVENT_HEADER = "X-Policybot-Event"
TICKET_CREATED = "ticket.created"
MAX_SKEW_SECONDS = 300  # a signed request older (or newer) than this is refused
CALLBACK_PATH = "/api/v1/hotline/callback"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value of `body` sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Constant-time comparison of a received signature header with the expected one."""
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("ascii", "replace"))


class HotlineContact(BaseModel):
    """The citizen's contact data (only when given with consent; masked unless configured otherwise)."""

    name: str | None = Field(None, description="Name (masked by default: 李*).")
    phone: str | None = Field(None, description="Phone number (masked by default: 138****5678).")


class HotlineTicketEvent(BaseModel):
    """Sent once for each new ticket (POST to POLICYBOT_HOTLINE_WEBHOOK_URL, headers
    X-Policybot-Event: ticket.created, X-Policybot-Timestamp and X-Policybot-Signature). Retried with
    backoff until the endpoint answers 2xx; a 4xx other than 408/429 stops the retries. Delivery is at
    least once: deduplicate by `event_id`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "ticket.created",
                    "event_id": "hotline_ticket:LY20261202-0001",
                    "ticket_no": "LY20261202-0001",
                    "created_at": "2026-12-02T09:30:00+08:00",
                    "due_date": "2026-12-09",
                    "department": "青浦区人力资源和社会保障局",
                    "category": "咨询",
                    "question": "失业金领完了还能续领吗？我的电话138****5678",
                    "channel": "web",
                    "contact": {"name": "李*", "phone": "138****5678"},
                    "callback_url": "https://zhengce.example.gov.cn/api/v1/hotline/callback",
                }
            ]
        }
    )

    event: Literal["ticket.created"] = Field("ticket.created", description="What happened.")
    event_id: str = Field(description="Unique per event: a retry carries the same id.")
    ticket_no: str = Field(description="The ticket number (留言编号), to name in the callback.")
    created_at: dt.datetime = Field(description="When the citizen left it (ISO 8601, Beijing time).")
    due_date: dt.date = Field(description="Answer due by (working days, 办理时限).")
    department: str = Field(description="The department it is assigned to (承办单位).")
    category: str = Field(description="咨询 / 投诉 / 建议 / 举报.")
    question: str = Field(description="The question; personal data in it is always masked.")
    channel: str = Field(description="Where it was left: web, wechat, telegram.")
    contact: HotlineContact | None = Field(
        None, description="Contact data given with consent, as POLICYBOT_HOTLINE_CONTACT allows; null: none."
    )
    callback_url: str | None = Field(
        None, description="Where to POST the reply (POLICYBOT_PUBLIC_BASE_URL + /api/v1/hotline/callback)."
    )


class HotlineCallback(BaseModel):
    """The hotline system's reply to a ticket, POSTed to /api/v1/hotline/callback with the same
    signature headers as the webhook. The reply is pushed to the citizen on their own channel and the
    ticket is closed (已办结)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "ticket_no": "LY20261202-0001",
                    "reply": "失业保险金领取期满后不能续领；如仍未就业，可申请临时救助，详询12345。",
                    "handler": "王五",
                    "case_no": "GD2026120200123",
                }
            ]
        },
    )

    ticket_no: str = Field(min_length=1, max_length=40, description="The ticket number from the webhook.")
    reply: str = Field(min_length=1, max_length=5000, description="The answer the citizen receives.")
    handler: str = Field(min_length=1, max_length=50, description="Who handled it at the hotline (承办人).")
    case_no: str | None = Field(None, max_length=60, description="The hotline's own case number (工单号).")
    handled_at: dt.datetime | None = Field(None, description="When it was handled at the hotline.")


class HotlineCallbackResult(BaseModel):
    ticket_no: str
    status: str = Field(description="The ticket's status now (已办结).")
    duplicate: bool = Field(
        False,
        description="True when this reply had already been applied (a retried callback): nothing changed.",
    )


class HotlineError(BaseModel):
    detail: str = Field(description="What is wrong, in Chinese.")
    code: Literal[
        "disabled",
        "bad_signature",
        "stale_timestamp",
        "replayed",
        "bad_body",
        "unknown_ticket",
        "already_answered",
    ]


__all__ = [
    "CALLBACK_PATH",
    "EVENT_HEADER",
    "MAX_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TICKET_CREATED",
    "TIMESTAMP_HEADER",
    "HotlineCallback",
    "HotlineCallbackResult",
    "HotlineContact",
    "HotlineError",
    "HotlineTicketEvent",
    "sign",
    "signature_matches",
]
