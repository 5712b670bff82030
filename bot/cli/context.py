"""The CLI's shared state: the lazy Context (sessions, kb, faqs, policies, tickets) that every
command handler receives, the handler and subparsers types, and the two helpers the handlers share
(JSON output, YYYY-MM-DD dates).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeAlias

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from knowledge.errors import PolicybotError

Handler = Callable[[argparse.Namespace, "Context"], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Context:
    """Lazily built stores for one CLI invocation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: sessionmaker[Session] | None = None
        self._kb: Any = None

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from bot.database import upgrade
            from knowledge.db import make_engine, make_sessionmaker

            engine = make_engine(self.settings.database_url)
            upgrade(engine)
            self._sessions = make_sessionmaker(engine)
            self._publications(self._sessions)
        return self._sessions

    def _publications(self, sessions: sessionmaker[Session]) -> None:
        """Publications made from the command line queue their subscribers' messages too."""
        from bot.app import shared_secret
        from bot.services import build_outbox
        from bot.subscriptions import install

        install(
            self.settings,
            sessions,
            build_outbox(self.settings, sessions),
            shared_secret(self.settings, sessions),
        )

    @property
    def kb(self) -> Any:
        if self._kb is None:
            from bot.services import build_knowledge_base

            self._kb = build_knowledge_base(self.settings, self.sessions)
        return self._kb

    @property
    def faqs(self) -> Any:
        """The knowledge base's store: its changes pass the publish guard (knowledge.faqs.conflicts)."""
        return self.kb.faqs

    @property
    def policies(self) -> Any:
        from bot.services import review_due
        from knowledge.policies import PolicyStore

        return PolicyStore(self.sessions, review_due=review_due(self.sessions))

    @property
    def tickets(self) -> Any:
        from bot.services import build_ticket_service

        return build_ticket_service(self.settings, self.sessions)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def parse_date(s: str | None) -> dt.date | None:
    if not s:
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise PolicybotError(f"日期格式应为 YYYY-MM-DD：{s}", f"bad date {s!r}") from None
