"""The one domain error type: it carries the Chinese text a citizen or staff member sees and the
English text for the log. The channel layer turns it into a friendly reply; anything else becomes
an apology plus a log line."""

from __future__ import annotations


class PolicybotError(Exception):
    """A domain error with a user-facing Chinese message and an English log message."""

    def __init__(self, user_message: str, log_message: str | None = None) -> None:
        super().__init__(log_message or user_message)
        self.user_message = user_message
        self.log_message = log_message or user_message


class NotFound(PolicybotError):
    pass


class InvalidInput(PolicybotError):
    pass


class Conflict(PolicybotError):
    """Someone else changed the record first (optimistic locking) or a duplicate exists."""
