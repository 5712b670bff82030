"""Incoming and Reply: the only types that cross the channel boundary (plain dataclasses).

A channel turns its wire format into an `Incoming`, hands it to the inbox and renders the `Reply`
list that comes back; later messages (a staff reply) are `Reply` values too, rendered by the same
channel. Nothing here knows a channel or the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from knowledge.models import utcnow


@dataclass
class Incoming:
    """One message from a citizen, as every channel translates it. `kind`: text (a question or a
    command), welcome (a new conversation: WeChat subscribe, Telegram /start, the widget opening),
    end (the user left: WeChat unsubscribe). `msg_id`: the channel's message id when it retries
    deliveries (deduplicated by the inbox); `meta["replay_key"]`: a signed request's nonce key."""

    channel: str
    user_id: str
    text: str
    msg_id: str | None = None
    received_at: dt.datetime = field(default_factory=utcnow)
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"


@dataclass
class Reply:
    kind: str  # answer | clarify | passage | handoff_offer | ticket_opened | ticket_queued | status | text
    text: str
    suggestions: list[str] = field(default_factory=list)
    faq_id: str | None = None
    ticket_no: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    ref: str | None = None  # query-log id to rate this reply
    form: str | None = None  # "handoff": a channel with forms shows the leave-a-message form
    question: str | None = None  # question to prefill in that form
    notice: dict[str, str] | None = None  # fields for channels that send a notice instead (WeChat 订阅通知)
    category: str | None = None  # the form's preset category (咨询 / 投诉 / 建议 / 举报)
    rate_ticket: str | None = None  # a staff reply the citizen can rate here (满意 / 基本满意 / 不满意)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["Incoming", "Reply"]
