"""专题 cases as a service: the `SpecialTopics` of handoff/special.py built from settings, the
e-mail that tells a drafting unit about its new case (once per case, recipients from
POLICYBOT_REPORT_EMAILS, the weekly report's SMTP settings) and the scheduled scan
(POLICYBOT_SPECIAL_TOPIC_SCHEDULE) that opens cases and mails them."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from sqlalchemy.orm import Session, sessionmaker

from bot.jobs import JobContext, Scheduler
from bot.reporting import SmtpConfig, _connect, new_message
from bot.settings import Settings
from handoff.sla import WorkCalendar
from handoff.special import Case, SpecialRule, SpecialTopics
from knowledge.answer import KnowledgeBase
from knowledge.gaps import OVERVIEW

log = logging.getLogger("policybot.special")
JOB_NAME = "special_topics"


def build_special_topics(
    settings: Settings, sessions: sessionmaker[Session], kb: KnowledgeBase
) -> SpecialTopics:
    rule = SpecialRule(askers=settings.special_topic_askers, due_workdays=settings.special_topic_due_days)
    return SpecialTopics(sessions, kb, WorkCalendar(sessions), rule)


def build_case_message(case: Case, sender: str, to: Sequence[str]) -> EmailMessage:
    msg = new_message(
        f"【专题】{case.unit}：{case.label}（{case.no}，请于 {case.due_on:%Y-%m-%d} 前办理）", sender, to
    )
    lines = [
        f"{case.unit}：",
        "",
        f"{case.window_start:%Y-%m-%d} 至 {case.window_end:%Y-%m-%d}，政策咨询机器人未能解答的问题“{case.label}”"
        f"集中出现（{case.trigger_text}）：{case.askers} 位群众提问 {case.questions} 次。",
        "根据政务公开工作要点（对留言反映较为集中的问题及时启动专题调查），已为贵单位开立专题：",
        "",
        f"  专题编号：{case.no}",
        f"  办理期限：{case.due_on:%Y-%m-%d}（按工作日计）",
        f"  代表性问题：{case.representative}",
        "",
        "群众的问法（已脱敏）：",
        *[f"  · {t}" for t in case.samples[:10]],
        "",
        "请在工作台“未解答周报”页查看专题，整理答复或常见问题解答后办结。",
        "",
        "—— 政策咨询机器人（自动发送，请勿直接回复）",
    ]
    msg.set_content("\n".join(lines))
    return msg


def mail_cases(service: SpecialTopics, smtp: SmtpConfig, recipients: dict[str, list[str]]) -> list[str]:
    """E-mail every case not yet mailed whose unit (or 全部单位) has recipients; each case once.
    The numbers of the cases sent."""
    plan = [(c, recipients.get(c.unit) or recipients.get(OVERVIEW) or []) for c in service.unmailed()]
    plan = [(c, to) for c, to in plan if to]
    sent: list[str] = []
    if not plan:
        return sent
    client = _connect(smtp)
    try:
        for case, to in plan:
            if not service.mark_mailed(case.no):
                continue  # another process took it
            try:
                client.send_message(build_case_message(case, smtp.sender, to))
                sent.append(case.no)
            except (OSError, smtplib.SMTPException) as exc:
                log.error("special case mail %s failed: %r", case.no, exc)
                service.unmark_mailed(case.no)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return sent


def scan_and_mail(service: SpecialTopics, settings: Settings, now: dt.datetime | None = None) -> str:
    opened = service.scan(now)
    detail = f"新开专题 {len(opened)} 个" + (f"（{'、'.join(c.no for c in opened)}）" if opened else "")
    smtp = SmtpConfig.from_settings(settings)
    if smtp is not None and settings.report_emails:
        detail += f"；邮件已发送 {len(mail_cases(service, smtp, settings.report_emails))} 封"
    return detail


def register_special_job(
    scheduler: Scheduler, settings: Settings, sessions: sessionmaker[Session], kb: KnowledgeBase
) -> None:
    """The scheduled scan (nothing when POLICYBOT_SPECIAL_TOPIC_SCHEDULE is empty)."""
    if not settings.special_topic_schedule:
        return
    service = build_special_topics(settings, sessions, kb)

    def run(ctx: JobContext) -> str:
        return scan_and_mail(service, settings, ctx.now)

    scheduler.register(JOB_NAME, settings.special_topic_schedule, run, stale_after=dt.timedelta(hours=1))


__all__ = [
    "JOB_NAME",
    "build_case_message",
    "build_special_topics",
    "mail_cases",
    "register_special_job",
    "scan_and_mail",
]
