"""The console's FAQ catalogue (knowledge/faqs/catalog.py) on SQLite and PostgreSQL: filters, validity on
a day with inactive source policies, usage from the query log and the sorts over it, draft visibility,
paging in id order and in a given order; the import report's items and the confirm-after-dry-run
guard (`expected_version`); the stages of normalisation shown by the hit test."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.errors import Conflict, InvalidInput
from knowledge.faqs import FaqStore
from knowledge.faqs.catalog import CatalogFilter, FaqCatalog
from knowledge.text import TextProcessor
from knowledge.usage import QueryLogStore

TODAY = dt.date(2026, 6, 1)


@pytest.fixture
def store(engine: Engine) -> FaqStore:
    s = FaqStore(make_sessionmaker(engine))
    s.add(
        by="t",
        id="a1",
        question="社保卡怎么补办",
        answer="网点补办",
        unit="人社局",
        tags=["社保"],
        source_policy="p1",
    )
    s.add(
        by="t",
        id="a2",
        question="医保怎么报销",
        answer="窗口报销",
        unit="医保局",
        valid_to=TODAY - dt.timedelta(days=1),
    )
    s.add(
        by="t",
        id="a3",
        question="公积金怎么提取",
        answer="线上提取",
        unit="人社局",
        valid_to=TODAY + dt.timedelta(days=20),
    )
    s.add(
        by="t",
        id="a4",
        question="新政策何时施行",
        answer="下月",
        unit="人社局",
        valid_from=TODAY + dt.timedelta(days=3),
    )
    s.add(by="t", id="a5", question="草稿问题", answer="x", unit="医保局", status="draft")
    return s


def _ids(catalog: FaqCatalog, filt: CatalogFilter, **kw: object) -> list[str]:
    return [r.faq.id for r in catalog.page(filt, today=TODAY, **kw).rows]  # type: ignore[arg-type]


def test_filters_and_validity(engine: Engine, store: FaqStore) -> None:
    c = FaqCatalog(make_sessionmaker(engine))
    assert _ids(c, CatalogFilter()) == ["a1", "a2", "a3", "a4", "a5"]
    assert _ids(c, CatalogFilter(unit="人社局")) == ["a1", "a3", "a4"]
    assert _ids(c, CatalogFilter(tag="社保")) == ["a1"]
    assert _ids(c, CatalogFilter(source_policy="p1")) == ["a1"]
    assert _ids(c, CatalogFilter(text="怎么 提取")) == ["a3"]
    assert _ids(c, CatalogFilter(status="draft")) == ["a5"]
    assert _ids(c, CatalogFilter(validity="expired")) == ["a2"]
    assert _ids(c, CatalogFilter(validity="expiring")) == ["a3"]
    assert _ids(c, CatalogFilter(validity="pending")) == ["a4"]
    assert _ids(c, CatalogFilter(validity="current")) == ["a1", "a3", "a5"]
    dead = ["p1"]
    assert _ids(c, CatalogFilter(validity="expired"), inactive_policies=dead) == ["a1", "a2"]
    assert "a1" not in _ids(c, CatalogFilter(validity="current"), inactive_policies=dead)
    assert _ids(c, CatalogFilter(draft_units=("人社局",))) == ["a1", "a2", "a3", "a4"]
    assert c.facets(draft_units=("人社局",)).units == ("人社局", "医保局")
    with pytest.raises(InvalidInput):
        c.page(CatalogFilter(validity="soon"), today=TODAY)
    with pytest.raises(InvalidInput):
        c.page(CatalogFilter(), sort="best", today=TODAY)


def test_usage_sorts_and_paging(engine: Engine, store: FaqStore) -> None:
    sessions = make_sessionmaker(engine)
    log = QueryLogStore(sessions)
    for i, (faq, rating) in enumerate([("a3", "useless"), ("a3", "useless"), ("a3", None), ("a2", "useful")]):
        row = log.record(channel="web", user_ref=f"u{i}", text="q", outcome="answer", faq_id=faq)
        if rating:
            log.rate(row, rating)
    c = FaqCatalog(sessions)
    assert _ids(c, CatalogFilter(), sort="asked")[:2] == ["a3", "a2"]
    assert _ids(c, CatalogFilter(), sort="rating")[:2] == ["a2", "a3"]
    assert _ids(c, CatalogFilter(), sort="useless")[0] == "a3"
    assert c.usage("a3").asked == 3 and c.usage("a3").useless == 2 and c.usage("a3").rating == 0.0
    assert c.usage("a1").rating is None
    page2 = c.page(CatalogFilter(), page=2, page_size=2, today=TODAY)
    assert [r.faq.id for r in page2.rows] == ["a3", "a4"] and page2.total == 5 and page2.pages == 3
    ordered = c.page(CatalogFilter(ids=("a4", "a1", "zz")), today=TODAY)
    assert [r.faq.id for r in ordered.rows] == ["a4", "a1"] and ordered.total == 2


def test_import_items_and_expected_version(tmp_path: Path, store: FaqStore) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"id": "a1", "question": "社保卡怎么补办", "answer": "新答案", "unit": "医保局"},
                {"question": "新问题", "answer": "答"},
            ]
        ),
        encoding="utf-8",
    )
    version = store.version()
    dry = store.import_file(f, dry_run=True)
    assert [(i.line, i.action, i.id) for i in dry.items] == [(1, "update", "a1"), (2, "create", None)]
    assert dry.items[0].unit == "医保局" and dry.items[0].old_unit == "人社局"
    assert set(dry.items[0].changes) == {"answer", "unit"}
    store.edit("a2", by="other", answer="别人改了")
    with pytest.raises(Conflict):
        store.import_file(f, expected_version=version)
    assert store.get("a1").answer == "网点补办" and store.count() == 5
    done = store.import_file(f, expected_version=store.version())
    assert done.created == 1 and store.get("a1").answer == "新答案"


def test_normalise_steps_end_in_the_normal_form() -> None:
    text = TextProcessor(synonyms=[["答复", "回音"]])
    steps = text.normalise_steps("请问，依申请公開多久给回音？")
    assert [name for name, _ in steps] == ["unified", "fillers", "synonyms"]
    assert "開" not in steps[0][1] and "请问" in steps[0][1] and "请问" not in steps[1][1]
    assert steps[-1][1] == text.normalise("请问，依申请公開多久给回音？") and "答复" in steps[-1][1]
    assert text.normalise_steps("") == []
