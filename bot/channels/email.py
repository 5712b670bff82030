"""The e-mail channel of the outbox: subscription pushes to relay partners (associations, parks:
四类推送法's 转发) who follow tags by address (`policybot subscriptions add-email`). Outbound only (no
routes, no conversation): `push` sends one plain-text mail per row through the SMTP server of the
weekly report (POLICYBOT_SMTP_*, `bot.reporting.new_message` for the headers). A refused recipient
is `PushImpossible` (recorded once); a server that cannot be reached is retried by the outbox.
"""

from __future__ import annotations

import smtplib

from bot import texts
from bot.conversation import Reply
from bot.notifier import PushImpossible
from bot.reporting import MailError, SmtpConfig, _connect, new_message
from bot.settings import Settings


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel | None:
        """The channel when POLICYBOT_SMTP_HOST (and a sender) are set, else None."""
        try:
            smtp = SmtpConfig.from_settings(settings)
        except MailError:
            return None
        return cls(smtp) if smtp is not None else None

    def push(self, user_id: str, reply: Reply) -> None:
        address = user_id.strip()
        if "@" not in address:
            raise PushImpossible("not an e-mail address")
        notice = reply.notice or {}
        msg = new_message(
            texts.say("push.email_subject", title=notice.get("title") or reply.text.split("\n", 1)[0]),
            self.smtp.sender,
            [address],
        )
        footer = texts.say("push.email_footer", tags=notice.get("department") or "")
        msg.set_content(f"{reply.text}\n\n{footer}\n")
        client = _connect(self.smtp)  # MailError (a PolicybotError): the outbox tries again later
        try:
            client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PushImpossible(f"the mail server refused the recipient ({len(exc.recipients)})") from None
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


__all__ = ["EmailChannel"]
