"""Settings defaults agree with the matcher's defaults, and the database URL aliases work."""

import pytest

from bot.settings import Settings
from knowledge.matcher import Thresholds


def test_threshold_defaults_match_matcher() -> None:
    s, t = Settings(), Thresholds()
    assert (s.answer_threshold, s.answer_margin, s.clarify_threshold) == (t.answer, t.margin, t.clarify)


def test_database_url_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("POLICYBOT_DATABASE_URL", "sqlite:///x.db")
    assert Settings().database_url == "sqlite:///x.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert Settings().database_url == "postgresql://u@h/db"
