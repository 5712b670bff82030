"""Staff notifications as a service: the scheduled job (POLICYBOT_STAFF_NOTIFY_SCHEDULE) that lets
`handoff.staff_alerts.StaffAlerts` record the events due now (new tickets, warnings one working day
before the due date, escalations of overdue tickets, 不满意 ratings) and hand each recipient's
waiting items out as one digest at most every POLICYBOT_STAFF_DIGEST_MINUTES; each digest becomes
one row of the durable outbox (kind ``staff_mail``, channel ``email``, the recipient address as
user id) in the transaction that marks its items taken, so a mail is written exactly once and sent
by the outbox's drain with retries (bot/channels/email.py). `render_staff_mail` turns the row's
items into the mail's subject and text (sentences from bot/texts.py).

Why the outbox and not a mailer of its own: the outbox already gives durability, a lease across
workers, backoff and a record of every attempt; the `staff_notice` table only adds what a digest
needs (items waiting per recipient) and the exactly-once event keys.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from bot.channels.email import NAME as EMAIL
from bot.jobs import JobContext, Scheduler
from bot.messages import Reply
from bot.notifier import STAFF_MAIL
from bot.reporting import MailError, SmtpConfig
from bot.settings import Settings
from bot.texts import say
from handoff.sla import WorkCalendar
from handoff.staff_alerts import KINDS, Mail, StaffAlerts

if TYPE_CHECKING:
    from bot.pipeline.outbox import Outbox

log = logging.getLogger("policybot.staffnotify")
JOB_NAME = "staff_notify"


def mail_configured(settings: Settings) -> bool:
    try:
        return SmtpConfig.from_settings(settings) is not None
    except MailError as exc:
        log.error("staff notification mails disabled: %s", exc.log_message)
        return False


def run_once(alerts: StaffAlerts, outbox: Outbox, settings: Settings, now: dt.datetime, *, mail: bool) -> str:
    """Collect the events due at `now` and queue the digests that are due; a summary line."""
    found = alerts.collect(now, mail=mail)

    def enqueue(session: Session, m: Mail) -> None:
        data: dict[str, Any] = {"items": m.items, "base_url": settings.public_base_url or ""}
        outbox.enqueue(session, kind=STAFF_MAIL, channel=EMAIL, user_id=m.recipient, data=data, key=m.key)

    mails = alerts.dispatch(now, digest_minutes=settings.staff_digest_minutes, enqueue=enqueue) if mail else 0
    events = "，".join(f"{say('staff_mail.kind.' + k)} {n}" for k, n in found.items() if n) or "无新事件"
    return f"{events}；邮件 {mails} 封" + ("" if mail else "（未配置邮件服务器，仅记录）")


def register_staff_notify_job(
    scheduler: Scheduler, settings: Settings, sessions: sessionmaker[Session], outbox: Outbox
) -> StaffAlerts | None:
    """The scheduled collection and digest (nothing when POLICYBOT_STAFF_NOTIFY_SCHEDULE is empty)."""
    if not settings.staff_notify_schedule:
        return None
    alerts = StaffAlerts(sessions, WorkCalendar(sessions))
    mail = mail_configured(settings)

    def run(ctx: JobContext) -> str:
        return run_once(alerts, outbox, settings, ctx.now, mail=mail)

    scheduler.register(
        JOB_NAME,
        settings.staff_notify_schedule,
        run,
        stale_after=dt.timedelta(minutes=10),
        retry_after=dt.timedelta(minutes=1),
    )
    return alerts


def _link(base_url: str, no: str) -> str:
    return f"{base_url.rstrip('/')}/console/tickets/{no}" if base_url else f"/console/tickets/{no}"


def render_staff_mail(data: dict[str, Any]) -> Reply:
    """A staff digest row as the mail's text and subject (`notice["subject"]`)."""
    items = [dict(i) for i in data.get("items") or [] if isinstance(i, dict)]
    base_url = str(data.get("base_url") or "")
    kinds = Counter(str(i.get("kind")) for i in items)
    if len(items) == 1:
        one = items[0]
        subject = say(
            "staff_mail.subject_one",
            kind=say(f"staff_mail.kind.{one.get('kind')}"),
            no=one.get("no", ""),
            department=one.get("department", ""),
        )
    else:
        parts = [
            say("staff_mail.summary_part", kind=say(f"staff_mail.kind.{k}"), n=kinds[k])
            for k in KINDS
            if kinds[k]
        ]
        subject = say("staff_mail.subject_many", summary="、".join(parts))
    blocks = [say("staff_mail.intro", n=len(items))]
    for i in items:
        kind = str(i.get("kind"))
        block = say(
            "staff_mail.item",
            kind=say(f"staff_mail.kind.{kind}"),
            no=i.get("no", ""),
            department=i.get("department", ""),
            category=i.get("category", ""),
            due_date=i.get("due_date", ""),
            status=i.get("status", ""),
            excerpt=i.get("excerpt", "") or "—",
            link=_link(base_url, str(i.get("no", ""))),
        )
        hint = f"staff_mail.hint.{kind}"
        blocks.append(block + ("\n" + say(hint) if kind != "new" else ""))
    blocks.append(say("staff_mail.footer"))
    return Reply("text", "\n\n".join(blocks), notice={"subject": subject})


__all__ = ["JOB_NAME", "STAFF_MAIL", "register_staff_notify_job", "render_staff_mail", "run_once"]
