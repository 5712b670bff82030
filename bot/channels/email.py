"""The `email` outbox channel: a later message pushed as one e-mail to an address, over the SMTP
settings the weekly report already uses (bot/reporting.py: `SmtpConfig`, its connection with
STARTTLS or implicit TLS and a timeout, `new_message` for the headers). `user_id` is the recipient
address; the subject comes from the reply's `notice["subject"]` (else its first line), the body is
its text. A refused recipient cannot be fixed by retrying (`PushImpossible`); a server that is down
or a failed login raises, so the outbox retries with backoff. One home for e-mail pushes: staff
notifications (bot/staffnotify.py) use it, and so can any other outbox kind that mails someone.
"""

from __future__ import annotations

import logging
import smtplib

from bot.messages import Reply
from bot.notifier import PushImpossible
from bot.reporting import MailError, SmtpConfig, _connect, new_message
from bot.settings import Settings

log = logging.getLogger("policybot.channels.email")

NAME = "email"


class EmailChannel:
    """Pushes `Reply` values as plain-text e-mails (one SMTP connection per push)."""

    name = NAME

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp

    def push(self, user_id: str, reply: Reply) -> None:
        to = (user_id or "").strip()
        if "@" not in to:
            raise PushImpossible(f"not an e-mail address: {to[:40]!r}")
        lines = reply.text.strip().splitlines() or [""]
        subject = (reply.notice or {}).get("subject") or lines[0][:80]
        msg = new_message(subject, self.smtp.sender, [to])
        msg.set_content(reply.text)
        client = _connect(self.smtp)  # MailError (an OSError's message): retried by the outbox
        try:
            client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PushImpossible(f"recipient refused: {exc.recipients!r}") from exc
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


def enabled(settings: Settings) -> EmailChannel | None:
    """The channel when POLICYBOT_SMTP_HOST is set (and the sender is valid), else None."""
    try:
        smtp = SmtpConfig.from_settings(settings)
    except MailError as exc:
        log.error("e-mail channel disabled: %s", exc.log_message)
        return None
    return EmailChannel(smtp) if smtp is not None else None


__all__ = ["NAME", "EmailChannel", "enabled"]
