"""Small talk as administrators edit it (the console's 寒暄语 page): for each intent (greeting, thanks,
...) the phrases that match a whole citizen message and the reply, with the validation of every edit.

The built-in table lives with the bot's texts (bot/texts.py) and is injected as `defaults`, so this
package never imports the bot. An edited intent is stored whole (phrases and reply) in one JSON row of
the shared key/value table `app_value` (key "smalltalk"); every change also bumps the counter
`kb_state["smalltalk"]` in the same transaction. A reader (`SmallTalkStore.overrides`, used by every
worker's dialogue) compares that counter at most every `refresh_seconds` and re-reads the row only
when it moved, so an edit applies on every worker within seconds; while the database is unreachable
the last overrides stay in use.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import DateTime, String, Text, column, insert, select, table, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput, NotFound
from knowledge.models import KbState

log = logging.getLogger(__name__)

KEY = "smalltalk"  # the app_value row and the kb_state counter
MAX_PHRASE = 12  # characters after `compact`: longer messages are never small talk (bot.talk)
MAX_PHRASES = 100
MAX_REPLY = 300
NO_PHRASES = frozenset({"emoji"})  # recognised from the message itself (only emoji and symbols)
# The console's names of the intents (staff vocabulary; the citizen never reads these).
LABELS: Mapping[str, str] = {
    "greeting": "问候",
    "presence": "在吗 / 有人吗",
    "thanks": "感谢",
    "farewell": "告别",
    "praise": "称赞",
    "who": "问身份",
    "emoji": "纯表情",
}
# The shared key/value table (created with the bot's tables; named here, not imported).
_APP_VALUE = table("app_value", column("key", String), column("value", Text), column("expires_at", DateTime))
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def compact(text: str) -> str:
    """Lower case, NFKC, without spaces and punctuation: the form small talk is matched on."""
    s = unicodedata.normalize("NFKC", text or "").lower()
    return _PUNCT.sub("", s)


@dataclass(frozen=True)
class SmallTalkEntry:
    intent: str
    phrases: tuple[str, ...]
    reply: str
    edited: bool = False  # an administrator's version (stored), not the built-in one

    @property
    def label(self) -> str:
        return LABELS.get(self.intent, self.intent)


Defaults = Callable[[], Mapping[str, SmallTalkEntry]]


def merged(
    defaults: Mapping[str, SmallTalkEntry], overrides: Mapping[str, SmallTalkEntry]
) -> dict[str, SmallTalkEntry]:
    """The table in effect: the built-in intents (in their order), each replaced by its edited version."""
    return {intent: overrides.get(intent, entry) for intent, entry in defaults.items()}


class SmallTalkStore:
    def __init__(
        self, sessions: sessionmaker[Session], defaults: Defaults, *, refresh_seconds: float = 2.0
    ) -> None:
        self.sessions = sessions
        self.defaults = defaults
        self.refresh_seconds = refresh_seconds
        self._overrides: dict[str, SmallTalkEntry] = {}
        self._version = -1
        self._at = -1.0
        self._lock = threading.Lock()

    # --- reading ----------------------------------------------------------------------------------
    def overrides(self) -> dict[str, SmallTalkEntry]:
        """The edited intents, as every worker sees them (cached; the counter is checked every few seconds)."""
        now = time.monotonic()
        if self._at >= 0 and now - self._at < self.refresh_seconds:
            return self._overrides
        with self._lock:
            try:
                with self.sessions() as s:
                    version = int(s.scalar(select(KbState.value).where(KbState.key == KEY)) or 0)
                    if version != self._version:
                        self._overrides = _parse(
                            s.scalar(select(_APP_VALUE.c.value).where(_APP_VALUE.c.key == KEY))
                        )
                        self._version = version
            except SQLAlchemyError as exc:  # keep the last overrides while the database is away
                log.warning("small talk overrides unavailable: %s", type(exc).__name__)
            self._at = time.monotonic()
        return self._overrides

    def entries(self) -> list[SmallTalkEntry]:
        """Every intent as it is in effect now, read from the database (the console's page)."""
        with self.sessions() as s:
            stored = _parse(s.scalar(select(_APP_VALUE.c.value).where(_APP_VALUE.c.key == KEY)))
        return list(merged(self.defaults(), stored).values())

    # --- editing ----------------------------------------------------------------------------------
    def add_phrase(self, intent: str, phrase: str) -> str:
        phrase = " ".join((phrase or "").split())
        key = compact(phrase)
        if intent in NO_PHRASES:
            raise InvalidInput("“纯表情”按消息内容自动识别，不需要添加短语", "phrase for emoji intent")
        if not key:
            raise InvalidInput("短语不能为空（标点和空格不计）", "empty small talk phrase")
        if len(key) > MAX_PHRASE:
            raise InvalidInput(
                f"短语最多{MAX_PHRASE}个字（不计标点和空格），更长的消息会按政策问题处理",
                "small talk phrase too long",
            )

        def change(entry: SmallTalkEntry, table: Mapping[str, SmallTalkEntry]) -> SmallTalkEntry:
            for other in table.values():
                if key in {compact(p) for p in other.phrases}:
                    if other.intent == entry.intent:
                        raise InvalidInput(f"“{phrase}”已在“{entry.label}”中", "duplicate small talk phrase")
                    raise InvalidInput(
                        f"“{phrase}”已属于“{other.label}”，请先从那里删除",
                        "small talk phrase in another intent",
                    )
            if len(entry.phrases) >= MAX_PHRASES:
                raise InvalidInput(f"每类最多{MAX_PHRASES}个短语", "too many small talk phrases")
            return replace(entry, phrases=(*entry.phrases, phrase))

        self._edit(intent, change)
        return phrase

    def remove_phrase(self, intent: str, phrase: str) -> None:
        key = compact(phrase)

        def change(entry: SmallTalkEntry, _table: Mapping[str, SmallTalkEntry]) -> SmallTalkEntry:
            kept = tuple(p for p in entry.phrases if compact(p) != key)
            if len(kept) == len(entry.phrases):
                raise NotFound(f"“{entry.label}”中没有短语“{phrase}”", "no such small talk phrase")
            if not kept:
                raise InvalidInput(
                    "每类至少保留一个短语；不想要这一类时，请修改它的回复", "last small talk phrase"
                )
            return replace(entry, phrases=kept)

        self._edit(intent, change)

    def set_reply(self, intent: str, reply: str) -> str:
        reply = "\n".join(line.rstrip() for line in (reply or "").strip().replace("\r\n", "\n").split("\n"))
        if not reply:
            raise InvalidInput("回复不能为空", "empty small talk reply")
        if len(reply) > MAX_REPLY:
            raise InvalidInput(f"回复最多{MAX_REPLY}个字", "small talk reply too long")
        self._edit(intent, lambda entry, _table: replace(entry, reply=reply))
        return reply

    def reset(self, intent: str) -> None:
        """Back to the built-in phrases and reply."""
        self._edit(intent, None)

    def _edit(
        self,
        intent: str,
        change: Callable[[SmallTalkEntry, Mapping[str, SmallTalkEntry]], SmallTalkEntry] | None,
    ) -> None:
        defaults = self.defaults()
        if intent not in defaults:
            raise NotFound("没有这一类寒暄语", f"unknown small talk intent {intent!r}")
        for attempt in (1, 2):
            try:
                with self.sessions.begin() as s:
                    _bump(s)  # first: the row lock serialises concurrent editors
                    raw = s.scalar(select(_APP_VALUE.c.value).where(_APP_VALUE.c.key == KEY))
                    stored = _parse(raw)
                    if change is None:
                        stored.pop(intent, None)
                    else:
                        table = merged(defaults, stored)
                        stored[intent] = replace(change(table[intent], table), edited=True)
                    value = json.dumps(
                        {
                            "intents": {
                                k: {"phrases": list(e.phrases), "reply": e.reply} for k, e in stored.items()
                            }
                        },
                        ensure_ascii=False,
                    )
                    if raw is None:
                        s.execute(insert(_APP_VALUE).values(key=KEY, value=value, expires_at=None))
                    else:
                        s.execute(update(_APP_VALUE).where(_APP_VALUE.c.key == KEY).values(value=value))
                break
            except IntegrityError:  # two first edits at once: the other created the rows; once more
                if attempt == 2:
                    raise
        self._at = -1.0  # this process sees its own edit at once


def _bump(s: Session) -> None:
    done = s.execute(update(KbState).where(KbState.key == KEY).values(value=KbState.value + 1)).rowcount  # type: ignore[attr-defined]
    if not done:
        s.add(KbState(key=KEY, value=1))
        s.flush()


def _parse(raw: str | None) -> dict[str, SmallTalkEntry]:
    if not raw:
        return {}
    try:
        data: Any = json.loads(raw)
        return {
            str(intent): SmallTalkEntry(
                intent=str(intent),
                phrases=tuple(str(p) for p in item.get("phrases", [])),
                reply=str(item.get("reply", "")),
                edited=True,
            )
            for intent, item in dict(data.get("intents", {})).items()
        }
    except (ValueError, TypeError, AttributeError):
        log.error("small talk overrides unreadable; using the built-in table")
        return {}


__all__ = ["LABELS", "SmallTalkEntry", "SmallTalkStore", "compact", "merged"]
