"""Sensitive words: the admin-managed list (`policybot kb sensitive add|list|delete`, the console's
敏感词 page), the check of a citizen message against it, and masking for public pages.

Words are matched on a normal form (NFKC, lower case, traditional -> simplified, spaces and
punctuation removed, so that 敏 感 词 and 敏.感.词 still match). The list is cached in memory and
re-read at most every `refresh_seconds`; while the database is unreachable the last list is used.
The list ships empty.
"""

from __future__ import annotations

import builtins
import logging
import re
import threading
import time
import unicodedata

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput, NotFound
from knowledge.models import SensitiveWord, utcnow
from knowledge.text import TextProcessor

log = logging.getLogger(__name__)
MAX_WORD = 50
_SKIP = re.compile(r"[\s\W_]", re.UNICODE)


def normal_word(word: str) -> str:
    s = unicodedata.normalize("NFKC", word or "").lower()
    s = TextProcessor._base(s)
    return _SKIP.sub("", s)


class SensitiveWords:
    def __init__(self, sessions: sessionmaker[Session], *, refresh_seconds: float = 5.0) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self._words: tuple[str, ...] = ()
        self._at = -1.0
        self._lock = threading.Lock()

    # --- the list ---------------------------------------------------------------------------------
    def add(self, word: str, *, by: str = "system") -> str:
        norm = normal_word(word)
        if not norm:
            raise InvalidInput("敏感词不能为空", "empty sensitive word")
        if len(norm) > MAX_WORD:
            raise InvalidInput(f"敏感词最多{MAX_WORD}个字", "sensitive word too long")
        with self.sessions.begin() as s:
            if s.get(SensitiveWord, norm) is None:
                s.add(SensitiveWord(word=norm, added_by=by[:100], added_at=utcnow()))
        self._at = -1.0
        return norm

    def delete(self, word: str) -> None:
        norm = normal_word(word)
        with self.sessions.begin() as s:
            gone = s.execute(delete(SensitiveWord).where(SensitiveWord.word == norm)).rowcount  # type: ignore[attr-defined]
        if not gone:
            raise NotFound(f"没有敏感词“{word}”", f"no sensitive word {norm!r}")
        self._at = -1.0

    def list(self) -> builtins.list[SensitiveWord]:
        with self.sessions() as s:
            return list(s.scalars(select(SensitiveWord).order_by(SensitiveWord.word)))

    # --- checking ---------------------------------------------------------------------------------
    def words(self) -> tuple[str, ...]:
        now = time.monotonic()
        if self._at >= 0 and now - self._at < self.refresh_seconds:
            return self._words
        with self._lock:
            try:
                with self.sessions() as s:
                    self._words = tuple(s.scalars(select(SensitiveWord.word)))
            except SQLAlchemyError as exc:  # keep the last list while the database is away
                log.warning("sensitive words unavailable: %s", type(exc).__name__)
            self._at = now
        return self._words

    def find(self, text: str) -> builtins.list[str]:
        """The listed words in `text` (on its normal form)."""
        words = self.words()
        if not words:
            return []
        norm = normal_word(text)
        return [w for w in words if w in norm]

    def mask(self, text: str) -> str:
        """`text` with every listed word replaced by ＊ (spaces or punctuation inside a word too)."""
        out = text or ""
        for word in self.words():
            pattern = r"[\s\W_]*".join(re.escape(ch) for ch in word)
            out = re.sub(pattern, "＊" * len(word), out, flags=re.IGNORECASE)
        return out


__all__ = ["SensitiveWords", "normal_word"]
