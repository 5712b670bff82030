"""The labelled conversation set (tests/fixtures/conversation_set.jsonl): at least 60 varied citizen
messages over the demo knowledge base, at least 90 % handled sensibly (bench/conversation_eval.py
prints the figures per group); the Dialogue holds no SQL, spool or channel names; the texts table
can be overridden by a window."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fastapi import FastAPI

from bot import texts
from bot.app import create_app
from bot.channels.memory import MemoryChannel
from tests.bot.conftest import make_settings
from tests.bot.conversation_judge import load_set, run

ROOT = Path(__file__).resolve().parents[2]


def test_the_set_is_varied_and_mostly_handled_sensibly(app: FastAPI) -> None:
    cases = load_set()
    assert len(cases) >= 60 and len({c["id"] for c in cases}) == len(cases)
    groups = Counter(c["group"] for c in cases)
    assert set(groups) == {"smalltalk", "out_of_scope", "person", "in_kb", "uncovered", "follow_up"}
    verdicts = run(app.state.inbox, cases)
    bad = [f"{v.id}: {v.why}" for v in verdicts if not v.ok]
    assert sum(v.ok for v in verdicts) / len(verdicts) >= 0.9, bad
    for group in ("smalltalk", "out_of_scope", "person"):  # these are not matcher questions: all of them
        assert all(v.ok for v in verdicts if v.group == group), bad


def test_the_dialogue_decides_without_sql_spool_or_channel_names() -> None:
    source = (ROOT / "bot" / "conversation.py").read_text(encoding="utf-8")
    code = source.split('"""', 2)[2]  # after the module docstring
    for word in (
        "spool",
        "Spool",
        ".execute(",
        "sessions",
        "wechat",
        "telegram",
        "TicketService",
        "self.tickets",
    ):
        assert word not in code, word
    for module in ("talk.py", "outcomes.py"):
        text = (ROOT / "bot" / module).read_text(encoding="utf-8")
        assert "sqlalchemy" not in text and "wechat" not in text.lower()


def test_a_window_edits_its_sentences_and_small_talk(demo_url: str, tmp_path: Path) -> None:
    saved_texts, saved_talk = dict(texts.TEXTS), {k: list(v) for k, v in texts.SMALLTALK.items()}
    path = tmp_path / "texts.json"
    path.write_text(
        json.dumps(
            {
                "texts": {"smalltalk.thanks": "不用谢，欢迎再来青浦人社窗口。"},
                "smalltalk": {"thanks": ["谢了哈", "谢谢"]},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    try:
        app = create_app(make_settings(demo_url, texts_file=str(path)))
        chat = MemoryChannel(app.state.inbox, "w1")
        assert chat.say("谢了哈") == "不用谢，欢迎再来青浦人社窗口。"
        path.write_text(json.dumps({"texts": {"no.such.key": "x"}}), encoding="utf-8")
        with pytest.raises(ValueError, match="no.such.key"):
            texts.load_overrides(str(path))
    finally:
        texts.TEXTS.clear()
        texts.TEXTS.update(saved_texts)
        texts.SMALLTALK.clear()
        texts.SMALLTALK.update(saved_talk)
