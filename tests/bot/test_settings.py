"""Thresholds are automatic unless pinned (pinned values pass to the knowledge base one by one), and
the database URL aliases work."""

import pytest

from bot.settings import Settings
from knowledge.matcher import Thresholds


def test_thresholds_are_automatic_unless_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.services import threshold_pins

    s = Settings()
    assert (s.answer_threshold, s.answer_margin, s.clarify_threshold) == (None, None, None)
    assert threshold_pins(s).apply(Thresholds(0.4, 0.03, 0.35)) == Thresholds(0.4, 0.03, 0.35)
    monkeypatch.setenv("POLICYBOT_ANSWER_THRESHOLD", "0.61")
    assert threshold_pins(Settings()).apply(Thresholds(0.4, 0.03, 0.35)) == Thresholds(0.61, 0.03, 0.35)


def test_database_url_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("POLICYBOT_DATABASE_URL", "sqlite:///x.db")
    assert Settings().database_url == "sqlite:///x.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert Settings().database_url == "postgresql://u@h/db"
