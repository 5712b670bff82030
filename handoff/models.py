"""Tables owned by the handoff package: tickets, their events, holidays (working-day calendar)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.db import Base


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- working-day calendar (handoff/sla.py) ---------------------------------------------------


class Holiday(Base):
    """One day whose status differs from (or confirms) the default calendar.

    `kind` is "holiday" (放假, also on a weekday) or "workday" (调休上班, also on a weekend). A row
    overrides the chinese_calendar package and the weekend rule for that day.
    """

    __tablename__ = "holiday"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(50), default="")  # 春节, 国庆节, ...
    source: Mapped[str] = mapped_column(String(20), default="manual")  # notice / csv / manual
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")


class HolidayYear(Base):
    """A year whose complete arrangement was imported (the official notice or a CSV).

    Years without a row here and unknown to chinese_calendar are computed with weekends only and
    carry a warning, even if a few single days were set by hand.
    """

    __tablename__ = "holiday_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(20))  # notice / csv
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    imported_by: Mapped[str] = mapped_column(String(100))
    holidays: Mapped[int] = mapped_column(Integer, default=0)  # number of 放假 days imported
    workdays: Mapped[int] = mapped_column(Integer, default=0)  # number of 调休上班 days imported


# --- tickets (handoff/tickets.py) ---------------------------------------------------------------


class Ticket(Base):
    """One citizen message (政策留言). Texts are stored masked; only the contact fields are in clear.

    `version` is the optimistic-lock counter: SQLAlchemy increments it on every UPDATE and adds
    ``WHERE version = <old>``, so a concurrent change makes the flush fail instead of being lost.
    """

    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(
            "status IN ('待受理', '办理中', '待补正', '已答复', '已办结', '已合并')", name="status"
        ),
        Index("ix_ticket_channel_user_ref", "channel", "user_ref"),
        Index("ix_ticket_status_due_date", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    no: Mapped[str] = mapped_column(String(40), unique=True)  # LY20261123-0007
    status: Mapped[str] = mapped_column(String(8), index=True)
    question: Mapped[str] = mapped_column(Text)  # masked
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # masked
    channel: Mapped[str] = mapped_column(String(20))
    user_ref: Mapped[str] = mapped_column(String(80))
    department: Mapped[str] = mapped_column(String(200), index=True)
    matched: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # nearest FAQs/policies
    contact_name: Mapped[str | None] = mapped_column(String(50))  # clear, only with consent
    contact_phone: Mapped[str | None] = mapped_column(String(20))  # clear, only with consent
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    due_date: Mapped[dt.date] = mapped_column(Date, index=True)
    due_warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    assigned_to: Mapped[str | None] = mapped_column(String(100), index=True)
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    replied_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    rating: Mapped[str | None] = mapped_column(String(8))  # 满意 / 基本满意 / 不满意
    rated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # supervisor attention (不满意)
    category: Mapped[str] = mapped_column(
        String(8), default="咨询", server_default="咨询"
    )  # 咨询/投诉/建议/举报
    flag_reason: Mapped[str | None] = mapped_column(String(20))  # why flagged: 不满意 / 敏感词
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    publish_question: Mapped[str | None] = mapped_column(Text)  # masked
    publish_reply: Mapped[str | None] = mapped_column(Text)  # masked
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    verify_code: Mapped[str] = mapped_column(String(6))
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    # time limit parts (handoff/tickets/extensions.py): due = received + limit + extension + paused
    limit_days: Mapped[int | None] = mapped_column(Integer)  # the category's limit when set
    extension_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # approved 延期
    paused_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # finished 补正
    merged_into: Mapped[str | None] = mapped_column(String(40), index=True)  # kept ticket's no (已合并)

    __mapper_args__ = {"version_id_col": version}


class TicketEvent(Base):
    """Audit trail: one row per state change, note or delivery attempt (texts masked)."""

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TicketCounter(Base):
    """Per-day ticket number sequence: one row per prefix and local date, incremented atomically."""

    __tablename__ = "ticket_counter"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. LY20261123
    value: Mapped[int] = mapped_column(Integer, default=0)


# --- staff console (handoff/console/) ------------------------------------------------------------


class StaffUser(Base):
    """A console account. `role` is admin / staff / supervisor / reader; `departments` are the
    queues of a staff member or the drafting units a reader may read (empty for admin/supervisor).
    `password_hash` is an argon2id hash; accounts are disabled, never deleted (the audit log keeps
    their name)."""

    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'staff', 'supervisor', 'reader')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50), default="")
    role: Mapped[str] = mapped_column(String(12))
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    password_changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    email: Mapped[str | None] = mapped_column(String(200))  # staff notifications (handoff/staff_alerts.py)


class StaffSession(Base):
    """A signed-in console session. The cookie carries the signed random id; only its SHA-256 is
    stored. Idle and absolute expiry are checked on every request; logout deletes the row."""

    __tablename__ = "staff_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginThrottle(Base):
    """Failure counter for one key ("user:<name>", "ip:<addr>", "board-ip:<addr>", "board-no:<no>"):
    failures inside the window; at the limit the key is locked until `locked_until`."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AuditEntry(Base):
    """Console audit log: logins, contact-data views, replies, transfers, publications, FAQ and
    account changes; who, when, from which IP. Never updated or deleted by the application."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(12), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(30), index=True)
    target: Mapped[str] = mapped_column(String(100), default="", index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Department(Base):
    """A department known to the console (queues, transfers, staff assignments)."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class ReplyTemplate(Base):
    """A reply template staff can insert (admin-editable); `department` empty = for everyone."""

    __tablename__ = "reply_template"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class SpecialCase(Base):
    """A 专题 case (seed 002 二.4): questions of one unanswered topic concentrated, so its drafting
    unit is asked to investigate by `due_on` (handoff/special.py). `emailed_at` is set once the unit
    was told by e-mail; `samples` are masked questions of the topic."""

    __tablename__ = "special_case"
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    no: Mapped[str] = mapped_column(String(20), unique=True)
    unit: Mapped[str] = mapped_column(String(200), index=True)
    label: Mapped[str] = mapped_column(String(200))
    representative: Mapped[str] = mapped_column(Text)
    samples: Mapped[list[str]] = mapped_column(JSON, default=list)
    askers: Mapped[int] = mapped_column(Integer)
    questions: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(12))  # askers | surge
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    emailed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class StaffNotice(Base):
    """One staff notification (handoff/staff_alerts.py): `event` names what happened once per ticket
    ("new:LY..:<department>", "warning:LY..:2026-12-03", "overdue:LY..:2026-12-03", "dissatisfied:LY..:<rated>");
    the row with an empty `recipient` records the event itself (its history line and audit entry
    are written with it), the other rows are the mails to write, one per recipient address, until a
    digest takes them into an outbox e-mail (`queued_at`, `delivery_key`)."""

    __tablename__ = "staff_notice"
    __table_args__ = (UniqueConstraint("event", "recipient", name="uq_staff_notice_event_recipient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(120))
    recipient: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))  # new / warning / overdue / dissatisfied
    ticket_no: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the mail's item, until queued
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    delivery_key: Mapped[str | None] = mapped_column(String(160))


# --- time limits: 延期 and 补正 (handoff/tickets/extensions.py) ----------------------------------


class TicketExtension(Base):
    """A 延期 request: extra working days asked for by the handler, decided by a supervisor."""

    __tablename__ = "ticket_extension"
    __table_args__ = (CheckConstraint("status IN ('requested', 'approved', 'refused')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="requested")
    days: Mapped[int] = mapped_column(Integer)  # extra working days
    reason: Mapped[str] = mapped_column(Text)  # masked
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)  # the supervisor's note (masked)
    due_before: Mapped[dt.date] = mapped_column(Date)
    due_after: Mapped[dt.date | None] = mapped_column(Date)


class TicketSupplement(Base):
    """A 补正 request: the clock of the ticket stops from `requested_at` until the citizen answers,
    staff resume it or `deadline` passes (`via`: chat / board / limit / staff)."""

    __tablename__ = "ticket_supplement"
    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'answered', 'expired', 'resumed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="waiting", index=True)
    request: Mapped[str] = mapped_column(Text)  # what the citizen is asked for (masked)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    paused_on: Mapped[dt.date] = mapped_column(Date)  # local date the clock stopped
    deadline: Mapped[dt.date] = mapped_column(Date, index=True)  # last day to answer
    resume_status: Mapped[str] = mapped_column(String(8))  # the status to go back to
    answer: Mapped[str | None] = mapped_column(Text)  # the citizen's supplement (masked)
    via: Mapped[str | None] = mapped_column(String(10))
    resumed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    paused_days: Mapped[int | None] = mapped_column(Integer)
    due_before: Mapped[dt.date] = mapped_column(Date)
    due_after: Mapped[dt.date | None] = mapped_column(Date)
