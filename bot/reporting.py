"""The weekly unanswered-questions report as a service: generating it for a week (the CLI
`policybot report weekly` and the scheduled job share `generate`), e-mailing each drafting unit its
report (HTML and XLSX attached, recipients from POLICYBOT_REPORT_EMAILS, stdlib smtplib with
STARTTLS or implicit TLS and a timeout), and the job registered with the scheduler
(POLICYBOT_REPORT_SCHEDULE, files in POLICYBOT_REPORT_DIR; at "MON 08:00" it reports the week that
ended the day before).
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.jobs import JobContext, Scheduler
from bot.settings import Settings
from handoff.weekly import faq_locator, ticket_summaries, unit_locator
from knowledge.answer import KnowledgeBase
from knowledge.errors import PolicybotError
from knowledge.gaps import OVERVIEW, GapParams, WeeklyResult, WrittenReport, generate_weekly, resolve_period

log = logging.getLogger("policybot.reporting")
JOB_NAME = "weekly_report"


class MailError(PolicybotError):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    starttls: bool
    use_ssl: bool
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        if not settings.smtp_host:
            return None
        sender = settings.smtp_from or settings.smtp_user
        if not sender or "@" not in sender:
            raise MailError(
                "请设置发件地址 POLICYBOT_SMTP_FROM", "smtp_from (or an e-mail smtp_user) missing"
            )
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            settings.smtp_password,
            sender,
            settings.smtp_starttls,
            settings.smtp_ssl,
            settings.smtp_timeout,
        )


def require_mail(settings: Settings) -> SmtpConfig:
    """The SMTP configuration for --email, or a clear error before anything is generated."""
    smtp = SmtpConfig.from_settings(settings)
    if smtp is None:
        raise MailError(
            "未配置邮件服务器，无法发送周报：请设置 POLICYBOT_SMTP_HOST（及 POLICYBOT_SMTP_FROM 等）",
            "--email without POLICYBOT_SMTP_HOST",
        )
    if not settings.report_emails:
        raise MailError(
            "未配置各单位的收件地址：请设置 POLICYBOT_REPORT_EMAILS，"
            '如 {"青浦区医疗保障局": ["a@example.gov.cn"]}',
            "--email without POLICYBOT_REPORT_EMAILS",
        )
    return smtp


def new_message(subject: str, sender: str, to: Sequence[str]) -> EmailMessage:
    """An e-mail with the headers every report mail carries (subject, from, to, date, message id)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    return msg


def build_message(
    written: WrittenReport, label: str, describe: str, sender: str, to: Sequence[str]
) -> EmailMessage:
    unit = written.unit or OVERVIEW
    msg = new_message(f"{unit} 未解答问题周报（{label}）", sender, to)
    lines = [
        f"{unit}：",
        "",
        f"附件是 {describe}（{label}）政策咨询机器人未能解答的问题周报。",
        f"未解答问题 {written.unanswered} 个，归纳为 {written.topics} 个主题。"
        if written.unanswered
        else "本周没有未解答的问题。",
        "请在工作台“未解答周报”中查看，并可将主题一键生成问答草稿。",
        "",
        "附件：网页版（HTML，可直接用浏览器打开）与 Excel 版（XLSX）。问题文本已脱敏。",
        "",
        "—— 政策咨询机器人（自动发送，请勿直接回复）",
    ]
    msg.set_content("\n".join(lines))
    msg.add_attachment(
        written.html.read_text(encoding="utf-8"), subtype="html", charset="utf-8", filename=written.html.name
    )
    msg.add_attachment(
        written.xlsx.read_bytes(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=written.xlsx.name,
    )
    return msg


@dataclass(frozen=True)
class MailResult:
    sent: tuple[tuple[str, tuple[str, ...]], ...]  # unit, recipients
    failed: tuple[tuple[str, str], ...]  # unit, error
    without_recipients: tuple[str, ...]  # units with a report and no configured address

    def describe(self) -> str:
        parts = [f"已发送 {len(self.sent)} 封"]
        if self.failed:
            parts.append(f"失败 {len(self.failed)} 封（{'、'.join(u for u, _ in self.failed)}）")
        if self.without_recipients:
            parts.append(f"未配置收件人 {len(self.without_recipients)} 个单位")
        return "，".join(parts)


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if smtp.use_ssl:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            if smtp.starttls:
                client.starttls(context=context)
        if smtp.user and smtp.password:
            client.login(smtp.user, smtp.password)
        return client
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(
            f"无法连接邮件服务器 {smtp.host}:{smtp.port}：{exc}",
            f"SMTP connect/login to {smtp.host}:{smtp.port} failed: {exc!r}",
        ) from exc


def send_reports(result: WeeklyResult, smtp: SmtpConfig, recipients: dict[str, list[str]]) -> MailResult:
    """One message per written report whose unit has recipients ("全部单位" for the overview), over
    one SMTP connection. A refused message is recorded and the others still go out."""
    period = result.analysis.period
    plan: list[tuple[WrittenReport, list[str]]] = []
    missing: list[str] = []
    for w in result.files:
        to = recipients.get(w.unit or OVERVIEW, [])
        if to:
            plan.append((w, to))
        elif w.unit is not None:
            missing.append(w.unit)
    sent: list[tuple[str, tuple[str, ...]]] = []
    failed: list[tuple[str, str]] = []
    if plan:
        client = _connect(smtp)
        try:
            for w, to in plan:
                unit = w.unit or OVERVIEW
                try:
                    client.send_message(build_message(w, period.label, period.describe(), smtp.sender, to))
                    sent.append((unit, tuple(to)))
                except (OSError, smtplib.SMTPException) as exc:
                    log.error("report mail to %s failed: %r", unit, exc)
                    failed.append((unit, str(exc)))
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
    out = MailResult(tuple(sent), tuple(failed), tuple(missing))
    log.info("report mail %s: %s", period.label, out.describe())
    return out


def generate(
    sessions: sessionmaker[Session],
    kb: KnowledgeBase,
    *,
    out_dir: str | Path,
    week: str | None = None,
    unit: str | None = None,
    params: GapParams | None = None,
    now: dt.datetime | None = None,
) -> WeeklyResult:
    """Analyse a week (default: the 7 days up to now) and write its reports to `out_dir`."""
    p = params or GapParams()
    period = resolve_period(week, now)
    kb.refresh(force=True)  # the store's synonyms and domain words shape the topics too
    tickets = ticket_summaries(sessions, period.start - dt.timedelta(weeks=p.trend_weeks))
    return generate_weekly(
        sessions,
        out_dir=out_dir,
        week=week,
        now=now,
        unit=unit,
        tickets=tickets,
        text=kb.text,
        locate_unit=unit_locator(kb),
        locate_faq=faq_locator(kb),
        matcher=kb.matcher,
        params=p,
    )


def week_before(day: dt.date) -> str:
    """The ISO week that ended before `day`'s week started (a Monday run reports last week)."""
    y, w, _ = (day - dt.timedelta(weeks=1)).isocalendar()
    return f"{y}-W{w:02d}"


def register_report_job(
    scheduler: Scheduler, settings: Settings, sessions: sessionmaker[Session], kb: KnowledgeBase
) -> None:
    """The scheduled weekly report (nothing when POLICYBOT_REPORT_SCHEDULE is empty)."""
    if not settings.report_schedule:
        return

    def run(ctx: JobContext) -> str:
        week = week_before(ctx.slot.date())
        result = generate(sessions, kb, out_dir=settings.report_dir, week=week)
        detail = f"{week}：主题 {len(result.analysis.topics)} 个，文件 {2 * len(result.files)} 个"
        smtp = SmtpConfig.from_settings(settings)
        if smtp is not None and settings.report_emails:
            detail += "；邮件" + send_reports(result, smtp, settings.report_emails).describe()
        return detail

    scheduler.register(JOB_NAME, settings.report_schedule, run, stale_after=dt.timedelta(hours=1))


__all__ = [
    "JOB_NAME",
    "MailError",
    "MailResult",
    "SmtpConfig",
    "build_message",
    "generate",
    "register_report_job",
    "require_mail",
    "send_reports",
    "week_before",
]
