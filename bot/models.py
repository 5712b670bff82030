"""Tables owned by the bot package: conversation state per (channel, user), the durable outbox of
later messages to citizens (`delivery`), the widget's mailbox of pushed replies that it polls
(`outbox`), inbound message dedup (WeChat retries), app-wide
secrets/tokens shared by all workers, the HTTP access log (bot/accesslog.py) and the claims of
scheduled job runs (bot/jobs.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base
from knowledge.models import utcnow


class ChatSession(Base):
    __tablename__ = "chat_session"
    __table_args__ = (UniqueConstraint("channel", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Outbox(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class InboundMessage(Base):
    """Dedup of inbound messages by (channel, msg_id), shared by all workers; keeps the reply.

    `msg_id` names the sender too (WeChat: ``openid:MsgId``), so a stored reply is only ever given
    back to the user it was made for. `replay_key` is the request's signed (timestamp, nonce) pair
    (WeChat): unique, so a captured signature cannot carry a second, different message."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("channel", "msg_id"),
        UniqueConstraint("channel", "replay_key", name="uq_inbound_message_replay_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    msg_id: Mapped[str] = mapped_column(String(128))
    replay_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), default="processing")  # processing / done
    reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Delivery(Base):
    """One later message to a citizen in the durable outbox (bot/outbox.py): what to say as data, to
    whom on which channel, and where its delivery stands. `key` names the event that caused it
    (``ticket_reply:LY20261201-0001:v3``), unique, so no event is ever delivered twice."""

    __tablename__ = "delivery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(30))  # ticket_reply | ...
    channel: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending | sent | failed | impossible
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AppValue(Base):
    """Small shared key/value rows: the generated secret key, access tokens with expiry."""

    __tablename__ = "app_value"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AccessLog(Base):
    """One HTTP request: when, method, path (never the query string), status, duration and the client
    IP. The IP is personal data: kept for POLICYBOT_ACCESS_LOG_RETENTION_DAYS, then deleted."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(300))
    status: Mapped[int] = mapped_column(SmallInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    ip: Mapped[str] = mapped_column(String(64))


class JobRun(Base):
    """One claimed run of a scheduled job (bot/jobs.py): the unique (name, period_key) pair makes
    exactly one worker, across processes and machines, run a job for a period."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("name", "period_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60))
    period_key: Mapped[str] = mapped_column(String(40))  # the slot, local time: 2026-11-23T08:00
    status: Mapped[str] = mapped_column(String(10))  # running / done / failed
    worker: Mapped[str] = mapped_column(String(120))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
