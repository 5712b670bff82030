"""`serve --demo` on an empty database loads the demo knowledge base and the demo tag catalogue, so
that subscriptions can be tried at once; a database with FAQs, or with a catalogue, is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.context import Context
from bot.cli.serve import _load_demo_if_empty
from bot.settings import Settings
from knowledge.policies.tags import TagCatalogue


def test_empty_database_gets_the_demo_and_its_subscription_topics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = Context(Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}"))
    _load_demo_if_empty(ctx)
    out = capsys.readouterr().out
    topics = [t.name for t in TagCatalogue(ctx.sessions).list()]
    assert len(topics) == 11 and "就业创业" in topics and "11 个订阅主题" in out
    # every tag of the demo FAQs is a topic or a synonym of one: the demo's tags all resolve
    demo_tags = sorted({t for rec in ctx.faqs.list(status="published", limit=1000) for t in rec.tags})
    assert len(demo_tags) > 100
    assert set(TagCatalogue(ctx.sessions).canonical(demo_tags)) <= set(topics)  # raises when one is not
    _load_demo_if_empty(ctx)  # not empty any more: nothing loaded again
    assert capsys.readouterr().out == ""
