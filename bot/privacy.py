"""A citizen's personal data across all stores (PIPL): subject-access export, erasure on request, and
the daily retention job.

A request names a person by a contact phone, a ticket number or a channel user (``CHANNEL:ID``, the
id the channel gives: WeChat openid, Telegram chat id, widget user id). `resolve` turns it into the
person's channel users and tickets (a phone or ticket leads to the channel user who left it, and so
to that user's other tickets). Their data: tickets with contact fields and events
(handoff.retention), query-log entries under the pseudonymous user reference
HMAC(secret, "channel:id") that the conversation writes (knowledge.retention), chat session state,
widget outbox rows, WeChat's last-message time and event dedup keys (bot tables), and the person's
subscriptions (knowledge.subscriptions). `export_data`
returns all of it; `erase_data` removes or anonymises it in one transaction and writes one audit
entry (`privacy_erase`) with counts and ticket numbers, never the personal data itself; exports are
audited too (`privacy_export`). `run_retention` is the scheduled job: contact data of closed tickets,
query log, idle chat sessions, outbox and access log past their retention periods.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.accesslog import purge_access_log
from bot.conversation import user_ref_hash
from bot.models import AppValue, ChatSession, Delivery, InboundMessage, JobRun, Outbox
from bot.settings import Settings
from handoff.models import AuditEntry, Ticket
from handoff.retention import (
    ERASED_REF,
    erase_tickets,
    export_tickets,
    purge_expired_contacts,
    ticket_users,
    tickets_for,
)
from knowledge.db import transaction
from knowledge.errors import InvalidInput, NotFound
from knowledge.models import QueryLog, to_db_time, utcnow
from knowledge.retention import delete_query_log_for, purge_query_log, query_log_for
from knowledge.subscriptions import SubscriptionStore

log = logging.getLogger("policybot.privacy")

CHANNELS = ("web", "wechat", "telegram")


@dataclass(frozen=True)
class Subject:
    """The person a request is about: the kind of selector, their channel users and tickets."""

    kind: str  # phone | ticket | user
    users: tuple[tuple[str, str], ...]
    ticket_ids: tuple[int, ...]

    def refs(self, secret: str) -> list[tuple[str, str]]:
        return [(c, user_ref_hash(secret, c, u)) for c, u in self.users]


def parse_user(value: str) -> tuple[str, str]:
    channel, sep, user_id = (value or "").strip().partition(":")
    if not sep or channel not in CHANNELS or not user_id.strip():
        raise InvalidInput(
            "用户标识格式应为 渠道:用户ID，渠道为 web、wechat 或 telegram，如 wechat:oAbC123",
            f"bad user selector {value!r}",
        )
    return channel, user_id.strip()


def resolve(
    sessions: sessionmaker[Session],
    *,
    phone: str | None = None,
    ticket: str | None = None,
    user: str | None = None,
) -> Subject:
    """The subject of a request by exactly one selector."""
    given = [k for k, v in (("phone", phone), ("ticket", ticket), ("user", user)) if v is not None]
    if len(given) != 1:
        raise InvalidInput("请指定 --phone、--ticket 或 --user-ref 其中之一", f"selectors given: {given}")
    if user is not None:
        users = [parse_user(user)]
        ids = tickets_for(sessions, users=users)
        return Subject("user", tuple(users), tuple(ids))
    if phone is not None:
        ids = tickets_for(sessions, phone=phone)
    else:
        ids = tickets_for(sessions, ticket_no=ticket)
        if not ids:
            raise NotFound("未找到该留言，请核对留言编号", f"privacy request: no ticket {ticket!r}")
    users = ticket_users(sessions, ids)
    all_ids = sorted(set(ids) | set(tickets_for(sessions, users=users)))
    return Subject(given[0], tuple(users), tuple(all_ids))


def _bot_rows(s: Session, subject: Subject) -> dict[str, Any]:
    sessions_out: list[dict[str, Any]] = []
    outbox_out: list[dict[str, Any]] = []
    wechat_last: list[dict[str, Any]] = []
    for channel, user_id in subject.users:
        for cs in s.scalars(
            select(ChatSession).where(ChatSession.channel == channel, ChatSession.user_id == user_id)
        ):
            sessions_out.append(
                {
                    "channel": channel,
                    "user_id": user_id,
                    "state": dict(cs.state or {}),
                    "updated_at": cs.updated_at.replace(tzinfo=dt.UTC).isoformat(),
                }
            )
        for ob in s.scalars(
            select(Outbox).where(Outbox.channel == channel, Outbox.user_id == user_id).order_by(Outbox.id)
        ):
            outbox_out.append(
                {
                    "channel": channel,
                    "user_id": user_id,
                    "reply": dict(ob.reply or {}),
                    "created_at": ob.created_at.replace(tzinfo=dt.UTC).isoformat(),
                }
            )
        if channel == "wechat":
            row = s.get(AppValue, f"wechat:last_in:{user_id}")
            if row is not None:
                wechat_last.append({"user_id": user_id, "last_message_at": row.value})
    return {"chat_sessions": sessions_out, "outbox": outbox_out, "wechat_last_message": wechat_last}


def export_data(
    sessions: sessionmaker[Session],
    secret: str,
    subject: Subject,
    *,
    by: str = "cli",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything stored about the subject (contact data in clear), and an audit entry for the export."""
    now = now or utcnow()
    data: dict[str, Any] = {
        "exported_at": now.replace(tzinfo=dt.UTC).isoformat(),
        "request": subject.kind,
        "channel_users": [{"channel": c, "user_id": u} for c, u in subject.users],
        "tickets": export_tickets(sessions, subject.ticket_ids),
        "query_log": query_log_for(sessions, subject.refs(secret)),
    }
    with sessions() as s:
        data.update(_bot_rows(s, subject))
        data["subscriptions"] = [
            {"channel": c, "user_id": u, "tag": t}
            for c, u in subject.users
            for t in SubscriptionStore.tags_in(s, c, u)
        ]
    with transaction(sessions) as s:
        s.add(
            AuditEntry(
                at=now,
                actor=by[:100],
                role="cli",
                action="privacy_export",
                target=subject.kind,
                detail={
                    "tickets": [t["no"] for t in data["tickets"]],
                    "query_log": len(data["query_log"]),
                    "chat_sessions": len(data["chat_sessions"]),
                },
            )
        )
    log.info(
        "privacy_export request=%s tickets=%d query_log=%d",
        subject.kind,
        len(data["tickets"]),
        len(data["query_log"]),
    )
    return data


@dataclass(frozen=True)
class Counts:
    """What a request touches (for the confirmation prompt) or what an erasure removed."""

    tickets: tuple[str, ...] = ()
    query_log: int = 0
    chat_sessions: int = 0
    outbox: int = 0
    wechat_rows: int = 0
    subscriptions: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.tickets
            or self.query_log
            or self.chat_sessions
            or self.outbox
            or self.wechat_rows
            or self.subscriptions
        )

    def describe(self) -> str:
        return (
            f"留言 {len(self.tickets)} 条（{'、'.join(self.tickets) or '无'}），提问记录 {self.query_log} 条，"
            f"会话 {self.chat_sessions} 个，待推送消息 {self.outbox} 条，微信记录 {self.wechat_rows} 条，"
            f"政策订阅 {self.subscriptions} 项"
        )


def _wechat_conditions(subject: Subject) -> tuple[list[str], list[Any]]:
    keys = [f"wechat:last_in:{u}" for c, u in subject.users if c == "wechat"]
    # every WeChat dedup key starts with the openid (messages: openid:MsgId, events: openid:CreateTime:…)
    inbound = [
        InboundMessage.msg_id.startswith(f"{u}:", autoescape=True) for c, u in subject.users if c == "wechat"
    ]
    return keys, inbound


def preview(sessions: sessionmaker[Session], secret: str, subject: Subject) -> Counts:
    """What `erase_data` would remove."""
    with sessions() as s:
        nos = (
            tuple(
                s.scalars(
                    select(Ticket.no).where(
                        Ticket.id.in_(list(subject.ticket_ids)),
                        or_(
                            Ticket.user_ref != ERASED_REF,
                            Ticket.contact_name.is_not(None),
                            Ticket.contact_phone.is_not(None),
                        ),
                    )
                )
            )
            if subject.ticket_ids
            else ()
        )
        ql = sum(
            int(
                s.scalar(
                    select(func.count())
                    .select_from(QueryLog)
                    .where(QueryLog.channel == c, QueryLog.user_ref == r)
                )
                or 0
            )
            for c, r in subject.refs(secret)
        )
        cs = sum(
            int(
                s.scalar(
                    select(func.count())
                    .select_from(ChatSession)
                    .where(ChatSession.channel == c, ChatSession.user_id == u)
                )
                or 0
            )
            for c, u in subject.users
        )
        ob = sum(
            int(s.scalar(select(func.count()).select_from(m).where(m.channel == c, m.user_id == u)) or 0)
            for c, u in subject.users
            for m in (Outbox, Delivery)
        )
        keys, inbound = _wechat_conditions(subject)
        wx = (
            int(s.scalar(select(func.count()).select_from(AppValue).where(AppValue.key.in_(keys))) or 0)
            if keys
            else 0
        )
        if inbound:
            wx += int(
                s.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.channel == "wechat", or_(*inbound))
                )
                or 0
            )
        subs = sum(SubscriptionStore.count_in(s, c, u) for c, u in subject.users)
    return Counts(tuple(sorted(nos)), ql, cs, ob, wx, subs)


def _deleted(s: Session, stmt: Any) -> int:
    """Rows removed by one DELETE."""
    return int(cast(CursorResult[Any], s.execute(stmt)).rowcount)


def erase_data(
    sessions: sessionmaker[Session],
    secret: str,
    subject: Subject,
    *,
    by: str = "cli",
    now: dt.datetime | None = None,
) -> Counts:
    """Remove or anonymise the subject's data in one transaction, with an audit entry of what was done."""
    now = now or utcnow()
    keys, inbound = _wechat_conditions(subject)
    with transaction(sessions) as s:
        nos = erase_tickets(s, subject.ticket_ids, now=now, actor=by, request=subject.kind)
        ql = delete_query_log_for(s, subject.refs(secret))
        cs = ob = wx = subs = 0
        for channel, user_id in subject.users:
            subs += SubscriptionStore.erase(s, channel, user_id)
            cs += _deleted(
                s, delete(ChatSession).where(ChatSession.channel == channel, ChatSession.user_id == user_id)
            )
            ob += _deleted(s, delete(Outbox).where(Outbox.channel == channel, Outbox.user_id == user_id))
            ob += _deleted(
                s, delete(Delivery).where(Delivery.channel == channel, Delivery.user_id == user_id)
            )
        if nos:  # the 12345 webhook rows of these tickets (bot/channels/hotline.py; user_id = ticket no)
            ob += _deleted(
                s, delete(Delivery).where(Delivery.channel == "hotline", Delivery.user_id.in_(nos))
            )
        if keys:
            wx += _deleted(s, delete(AppValue).where(AppValue.key.in_(keys)))
        if inbound:
            wx += _deleted(s, delete(InboundMessage).where(InboundMessage.channel == "wechat", or_(*inbound)))
        counts = Counts(tuple(nos), ql, cs, ob, wx, subs)
        s.add(
            AuditEntry(
                at=now,
                actor=by[:100],
                role="cli",
                action="privacy_erase",
                target=subject.kind,
                detail={
                    "tickets": list(nos),
                    "query_log": ql,
                    "chat_sessions": cs,
                    "outbox": ob,
                    "wechat_rows": wx,
                    "subscriptions": subs,
                },
            )
        )
    log.info(
        "privacy_erase request=%s tickets=%d query_log=%d chat_sessions=%d", subject.kind, len(nos), ql, cs
    )
    return counts


# --- the retention job ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionReport:
    contacts: tuple[str, ...] = ()  # tickets whose contact data was erased
    query_log: int = 0
    chat_sessions: int = 0
    outbox: int = 0
    access_log: int = 0
    job_runs: int = 0  # finished scheduler runs (bot/jobs.py), kept as long as the access log
    cutoffs: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"清除联系方式的留言 {len(self.contacts)} 条，删除提问记录 {self.query_log} 条、会话 {self.chat_sessions} 个、"
            f"待推送消息 {self.outbox} 条、访问日志 {self.access_log} 条"
        )


def run_retention(
    settings: Settings, sessions: sessionmaker[Session], now: dt.datetime | None = None
) -> RetentionReport:
    """The daily retention job: delete or anonymise whatever is past its retention period."""
    now = to_db_time(now) if now is not None else utcnow()
    contacts = purge_expired_contacts(sessions, now, retention_days=settings.contact_retention_days)
    ql_cut = now - dt.timedelta(days=settings.querylog_retention_days)
    al_cut = now - dt.timedelta(days=settings.access_log_retention_days)
    ql = purge_query_log(sessions, ql_cut)
    with sessions.begin() as s:
        cs = _deleted(s, delete(ChatSession).where(ChatSession.updated_at < ql_cut))
        ob = _deleted(s, delete(Outbox).where(Outbox.created_at < ql_cut))
        ob += _deleted(s, delete(Delivery).where(Delivery.created_at < ql_cut, Delivery.status != "pending"))
    al = purge_access_log(sessions, al_cut)
    with sessions.begin() as s:  # a period this old is never claimed again (only the latest slot is)
        jr = _deleted(s, delete(JobRun).where(JobRun.started_at < al_cut, JobRun.status != "running"))
    report = RetentionReport(
        contacts=contacts.tickets,
        query_log=ql,
        chat_sessions=cs,
        outbox=ob,
        access_log=al,
        job_runs=jr,
        cutoffs={
            "contacts_closed_before": contacts.cutoff.isoformat(),
            "query_log_before": ql_cut.isoformat(),
            "access_log_before": al_cut.isoformat(),
        },
    )
    log.info(
        "retention contacts=%d query_log=%d chat_sessions=%d outbox=%d access_log=%d job_runs=%d",
        len(report.contacts),
        ql,
        cs,
        ob,
        al,
        jr,
    )
    return report


RETENTION_JOB = "retention"
RETENTION_SCHEDULE = "DAILY 03:30"  # Beijing time, a quiet hour


def register_retention_job(scheduler: Any, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Register the daily retention run with the app's job scheduler (bot.jobs.Scheduler); one worker
    runs it per day, a missed day runs when the service is next up."""

    def job(ctx: Any) -> str:
        return run_retention(settings, sessions, to_db_time(ctx.now)).describe()

    scheduler.register(RETENTION_JOB, RETENTION_SCHEDULE, job)
