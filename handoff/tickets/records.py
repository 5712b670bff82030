"""The ticket vocabulary and what callers see: statuses, ratings, limits and the Chinese messages
(including `CONSENT_TEXT`, the one consent text), the `TicketView` / `EventView` records and how a row
becomes one, and the `Notifier` protocol through which a reply reaches the citizen (bot's outbox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from handoff.models import Ticket, TicketCounter, TicketEvent

# --- vocabulary ----------------------------------------------------------------------------------

Status = Literal["待受理", "办理中", "待补正", "已答复", "已办结"]
PENDING: Final = "待受理"
IN_PROGRESS: Final = "办理中"
SUPPLEMENT: Final = "待补正"  # waiting for the citizen's 补正: the time limit is paused
REPLIED: Final = "已答复"
CLOSED: Final = "已办结"
STATUSES: tuple[str, ...] = (PENDING, IN_PROGRESS, SUPPLEMENT, REPLIED, CLOSED)
# A duplicate merged into another ticket (`merged_into`): out of the queue and the board; its citizen
# gets the kept ticket's answer. Not in STATUSES: lists leave it out unless asked for by name.
MERGED: Final = "已合并"
ALL_STATUSES: tuple[str, ...] = (*STATUSES, MERGED)
OPEN_STATUSES: tuple[str, ...] = (PENDING, IN_PROGRESS)  # the time limit is running

Rating = Literal["满意", "基本满意", "不满意"]
RATINGS: tuple[str, ...] = get_args(Rating)
CATEGORIES: tuple[str, ...] = ("咨询", "建议", "投诉", "求助", "举报")

ROLES: frozenset[str] = frozenset({"user", "bot", "staff"})

# Event actions (stored in English) and the labels the console shows.
ACTION_LABELS: Mapping[str, str] = {
    "open": "提交留言",
    "assign": "受理",
    "reply": "答复",
    "close": "办结",
    "reopen": "重新办理",
    "transfer": "转办",
    "note": "备注",
    "rate": "评价",
    "publish": "公开",
    "unpublish": "取消公开",
    "delivery": "推送答复",
    "contact_purged": "清除联系方式",
    "erased": "依申请删除个人信息",
    "sla_warning": "到期提醒",  # handoff/staff_alerts.py
    "sla_escalation": "超期督办",
    "category": "修改留言类型",
    "extension_request": "申请延期",
    "extension_approve": "批准延期",
    "extension_refuse": "不批准延期",
    "supplement_request": "要求补正",
    "supplement_answer": "收到补正",
    "supplement_resume": "恢复计时",
    "interim": "阶段性答复",
    "merge": "合并至",
    "merged_in": "合并留言",
}

# The text a channel shows before it asks for a name or phone number; `open(consent=True)` means
# the citizen agreed to exactly this.
CONSENT_TEXT: Final = (
    "您留下的姓名和手机号码仅用于工作人员就本条留言与您联系，不会公开，也不会用于其他用途。"
    "同意请继续填写，不同意可直接提交留言（不留联系方式）。"
)

CONFLICT_MESSAGE: Final = "该留言已被他人更新，请刷新后再操作"
NOT_FOUND_MESSAGE: Final = "未找到该留言，请核对留言编号"
LOOKUP_FAILED_MESSAGE: Final = "未找到该留言，请核对留言编号和查询码"

MAX_QUESTION = 2000
MAX_REPLY = 5000
MAX_NOTE = 2000
MAX_NAME = 50
MAX_TRANSCRIPT_ENTRIES = 50
MAX_TRANSCRIPT_TEXT = 2000
MAX_MATCHED = 5
MAX_LIMIT = 3660  # working days; the calendar refuses more
MAX_PAGE = 500


_RETRIES = 3

_Sel = TypeVar("_Sel", bound="Select[*tuple[Any, ...]]")


# --- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketView:
    """A ticket detached from the session. Texts are masked except the contact fields, which are
    in clear: callers decide who may see them (staff of the department, never the public board).
    Datetimes are timezone-aware (UTC); dates (`due_date`) are China local dates."""

    id: int
    no: str
    status: str
    question: str
    transcript: tuple[dict[str, str], ...]
    channel: str
    user_ref: str
    department: str
    matched: tuple[dict[str, Any], ...]
    contact_name: str | None
    contact_phone: str | None
    consent_at: dt.datetime | None
    due_date: dt.date
    due_warnings: tuple[str, ...]
    overdue: bool  # still open (待受理/办理中) after its due date, as of when the view was made
    created_at: dt.datetime
    updated_at: dt.datetime
    assigned_to: str | None
    reply: str | None
    replied_at: dt.datetime | None
    replied_by: str | None
    closed_at: dt.datetime | None
    rating: str | None
    rated_at: dt.datetime | None
    flagged: bool  # a dissatisfied rating re-opened it: supervisor attention
    published: bool
    publish_question: str | None
    publish_reply: str | None
    published_at: dt.datetime | None
    verify_code: str
    version: int
    idempotency_key: str | None
    category: str = "咨询"
    flag_reason: str | None = None
    limit_days: int | None = None  # the time limit set at opening (None: tickets from before it was kept)
    extension_days: int = 0  # approved 延期, working days
    paused_days: int = 0  # finished 补正 pauses, working days
    merged_into: str | None = None  # the kept ticket's number when this one is 已合并

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class EventView:
    id: int
    ticket_id: int
    at: dt.datetime
    actor: str
    action: str
    detail: dict[str, Any]

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


class Notifier(Protocol):
    """Tells the citizen of a staff reply on the channel the ticket came from (implemented by `bot`:
    a row in its durable outbox).

    `enqueue` runs inside the reply's own transaction, with its session, so the reply and the
    message to the citizen commit together or not at all. It gets the ticket, never a text: the
    channel renders the notice from the ticket's fields. It must not call any network service.
    Each delivery attempt is reported back with `TicketService.record_delivery`.
    """

    def enqueue(self, session: Session, ticket: TicketView) -> None: ...

    def enqueue_interim(self, session: Session, ticket: TicketView, text: str) -> None:
        """An interim reply (阶段性答复, `text` masked): the ticket stays open and unanswered."""
        ...

    def enqueue_merged(self, session: Session, ticket: TicketView, merged: TicketView) -> None:
        """The kept `ticket`'s reply to the citizen of a duplicate `merged` into it."""
        ...


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _as_text_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _view(t: Ticket, today: dt.date) -> TicketView:
    created = _aware(t.created_at)
    updated = _aware(t.updated_at)
    assert created is not None and updated is not None
    return TicketView(
        id=t.id,
        no=t.no,
        status=t.status,
        question=t.question,
        transcript=tuple(dict(e) for e in (t.transcript or [])),
        channel=t.channel,
        user_ref=t.user_ref,
        department=t.department,
        matched=tuple(dict(m) for m in (t.matched or [])),
        contact_name=t.contact_name,
        contact_phone=t.contact_phone,
        consent_at=_aware(t.consent_at),
        due_date=t.due_date,
        due_warnings=tuple(_as_text_list(t.due_warnings)),
        overdue=t.status in OPEN_STATUSES and t.due_date < today,
        created_at=created,
        updated_at=updated,
        assigned_to=t.assigned_to,
        reply=t.reply,
        replied_at=_aware(t.replied_at),
        replied_by=t.replied_by,
        closed_at=_aware(t.closed_at),
        rating=t.rating,
        rated_at=_aware(t.rated_at),
        flagged=bool(t.flagged),
        published=bool(t.published),
        publish_question=t.publish_question,
        publish_reply=t.publish_reply,
        published_at=_aware(t.published_at),
        verify_code=t.verify_code,
        version=t.version,
        idempotency_key=t.idempotency_key,
        category=t.category or "咨询",
        flag_reason=t.flag_reason,
        limit_days=t.limit_days,
        extension_days=t.extension_days or 0,
        paused_days=t.paused_days or 0,
        merged_into=t.merged_into,
    )


def _event_view(e: TicketEvent) -> EventView:
    at = _aware(e.at)
    assert at is not None
    return EventView(
        id=e.id, ticket_id=e.ticket_id, at=at, actor=e.actor, action=e.action, detail=dict(e.detail or {})
    )


def next_day_number(s: Session, key: str) -> int:
    """Atomically increment and return the day's ticket counter `key` (an upsert with RETURNING)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        pg = pg_insert(TicketCounter).values(key=key, value=1)
        stmt = pg.on_conflict_do_update(
            index_elements=[TicketCounter.key], set_={"value": TicketCounter.value + 1}
        ).returning(TicketCounter.value)
        return int(s.execute(stmt).scalar_one())
    if dialect == "sqlite":
        lite = sqlite_insert(TicketCounter).values(key=key, value=1)
        stmt2 = lite.on_conflict_do_update(
            index_elements=[TicketCounter.key], set_={"value": TicketCounter.value + 1}
        ).returning(TicketCounter.value)
        return int(s.execute(stmt2).scalar_one())
    # Other databases: lock the row (or create it; a concurrent creator makes this fail and the
    # caller gets an exception, never a duplicate number).
    row = s.execute(
        select(TicketCounter).where(TicketCounter.key == key).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = TicketCounter(key=key, value=0)
        s.add(row)
    row.value += 1
    s.flush()
    return row.value
