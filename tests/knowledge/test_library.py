"""The policy library's data: status with the replacing document, relations, the answer for an FAQ
whose source was repealed or revised (the replacement's article, never the old answer), the review
list with due dates and the validity sweep, and the tag catalogue (import, refusal with the row
number, synonyms stored as the canonical tag)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine

from knowledge.answer import KnowledgeBase
from knowledge.db import make_sessionmaker
from knowledge.demo import load_demo
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.faqs import FaqStore, ImportFailed
from knowledge.policies import PolicyStore
from knowledge.policies.records import article_anchor, article_link
from knowledge.policies.review import ReviewList, weekdays_due
from knowledge.policies.tags import TagCatalogue, UnknownTags

OLD = "qingpu-rsj-2023"  # 青人社〔2023〕11号, cited by demo-001 (依申请公开多久答复), article 二(二)
NEW_TEXT = """青浦区人力资源和社会保障局2025年政务公开工作要点
青人社〔2025〕3号
一、总体要求
全面落实政务公开各项制度，持续提升公开质量。
二、重点任务
（一）主动公开重点领域信息。按规定公开就业创业、社会保险等领域政策文件。
（二）规范办理依申请公开。收到政府信息公开申请之日起15个工作日内予以答复，不能当场答复的及时告知。
青浦区人力资源和社会保障局
2025年2月10日
"""


@pytest.fixture
def kb(engine: Engine) -> KnowledgeBase:
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    return KnowledgeBase(sessions, refresh_seconds=0.0)


def _new(kb: KnowledgeBase) -> str:
    rec = kb.policies.import_text(NEW_TEXT, id="qingpu-rsj-2025", issuer="青浦区人力资源和社会保障局")
    kb.policies.refresh(force=True)
    return rec.id


def test_status_with_replacement_and_back(kb: KnowledgeBase) -> None:
    new = _new(kb)
    r = kb.policies.set_status(OLD, "废止", by="admin", replaced_by="青人社〔2025〕3号")  # by 文号
    assert (r.status, r.replaced_by) == ("废止", new)
    assert [p.id for p in kb.policies.replaces(new)] == [OLD]
    with pytest.raises(InvalidInput):
        kb.policies.set_status(OLD, "废止", by="admin", replaced_by=OLD)
    with pytest.raises(Conflict):  # the replacement cannot be replaced by what it replaced
        kb.policies.set_status(new, "已修订", by="admin", replaced_by=OLD)
    with pytest.raises(NotFound):
        kb.policies.set_status(OLD, "废止", by="admin", replaced_by="no-such-policy")
    back = kb.policies.set_status(OLD, "有效", by="admin")
    assert (back.status, back.replaced_by) == ("有效", None)


def test_relations_both_directions(kb: KnowledgeBase) -> None:
    new = _new(kb)
    kb.policies.relate(new, "依据", OLD, by="admin")
    kb.policies.relate(new, "依据", OLD, by="admin")  # idempotent
    assert [(r.kind, r.policy.id) for r in kb.policies.related(new)] == [("依据", OLD)]
    assert [(r.kind, r.policy.id) for r in kb.policies.related(OLD)] == [("依据本文件的文件", new)]
    with pytest.raises(InvalidInput):
        kb.policies.relate(new, "参考", OLD, by="admin")
    with pytest.raises(InvalidInput):
        kb.policies.relate(new, "解读", new, by="admin")
    assert kb.policies.unrelate(new, "依据", OLD) and kb.policies.related(new) == []


def test_repealed_source_answers_with_the_replacement(kb: KnowledgeBase) -> None:
    before = kb.ask("依申请公开多长时间答复")
    assert before.decision == "answer" and before.faq_id == "demo-001"
    new = _new(kb)
    kb.policies.set_status(OLD, "废止", by="admin", replaced_by=new)
    r = kb.ask("依申请公开多长时间答复")
    assert r.decision == "passage" and r.answer is None and r.faq_id is None  # never the old answer
    assert r.superseded is not None and r.superseded.faq_id == "demo-001"
    assert (r.superseded.status, r.superseded.old.policy_id, r.superseded.new.policy_id) == ("废止", OLD, new)
    assert r.passages[0].policy_id == new and "15个工作日" in r.passages[0].text
    assert r.sources[0].article_url == article_link(new, r.passages[0].label)
    assert r.as_dict()["superseded"]["new"]["title"] == "青浦区人力资源和社会保障局2025年政务公开工作要点"
    chosen = kb.answer_for("demo-001")  # picked from a clarify list: the same
    assert chosen is not None and chosen.superseded is not None and chosen.answer is None


def test_revised_source_answers_with_the_revision_and_chain(kb: KnowledgeBase) -> None:
    new = _new(kb)
    kb.policies.set_status(OLD, "已修订", by="admin", replaced_by=new)
    r = kb.ask("依申请公开多长时间答复")
    assert r.superseded is not None and r.superseded.status == "已修订" and r.passages[0].policy_id == new
    # the replacement itself repealed without a successor: no current replacement, never the old answer
    kb.policies.set_status(new, "废止", by="admin")
    r2 = kb.ask("依申请公开多长时间答复")
    assert r2.faq_id != "demo-001" and r2.superseded is None


def test_status_change_puts_citing_faqs_on_the_review_list(kb: KnowledgeBase) -> None:
    new = _new(kb)
    today = dt.date(2026, 3, 2)
    kb.policies.set_status(OLD, "废止", by="admin", replaced_by=new, today=today)
    reviews = ReviewList(kb.sessions)
    items = reviews.items()
    demo = [i for i in items if i.faq_id == "demo-001"]
    assert len(demo) == 1 and demo[0].reason == "废止" and demo[0].due_on == weekdays_due(today)
    assert demo[0].unit == kb.faqs.require("demo-001").unit and "已废止" in demo[0].detail
    kb.policies.set_status(OLD, "废止", by="admin", replaced_by=new, today=today)  # no second entry
    assert len([i for i in reviews.items() if i.faq_id == "demo-001"]) == 1
    assert (
        demo[0].unit is not None
        and [i.faq_id for i in reviews.items(unit=demo[0].unit)].count("demo-001") == 1
    )
    # the FAQ is rewritten on the new source: the sweep closes the review
    kb.faqs.edit("demo-001", by="editor", source_policy=new, answer="15个工作日内答复。")
    result = reviews.sweep(today=today)
    assert demo[0].id in result.resolved
    assert "demo-001" not in [i.faq_id for i in reviews.items()]


def test_sweep_lists_sources_expiring_within_30_days_and_expires_policies(kb: KnowledgeBase) -> None:
    today = dt.date(2026, 3, 2)
    kb.policies.set_expiry(OLD, today + dt.timedelta(days=20), by="admin")
    reviews = ReviewList(kb.sessions)
    r = reviews.sweep(today=today)
    expiring = [i for i in reviews.items() if i.faq_id == "demo-001"]
    assert r.flagged and len(expiring) == 1 and expiring[0].reason == "即将到期"
    assert expiring[0].due_on == weekdays_due(today)  # the earlier of expiry and 10 working days
    assert reviews.sweep(today=today).flagged == []  # idempotent
    far = dt.date(2026, 3, 2) + dt.timedelta(days=45)
    kb.policies.set_expiry(OLD, far, by="admin")
    assert expiring[0].id in reviews.sweep(today=today).resolved  # no longer within 30 days
    assert "demo-001" not in [i.faq_id for i in reviews.items()]
    # past its expiry date the policy becomes 失效 and its FAQs go on the list for that reason
    late = reviews.sweep(today=far + dt.timedelta(days=1))
    assert OLD in late.expired_policies and kb.policies.get(OLD).status == "失效"
    assert [i.reason for i in reviews.items() if i.faq_id == "demo-001"] == ["失效"]


def test_resolve_by_staff(kb: KnowledgeBase) -> None:
    kb.policies.set_status(OLD, "已修订", by="admin")
    reviews = ReviewList(kb.sessions)
    item = next(i for i in reviews.items() if i.faq_id == "demo-001")
    done = reviews.resolve(item.id, by="editor")
    assert done.resolved_at is not None and item.id not in [i.id for i in reviews.items()]
    with pytest.raises(NotFound):
        reviews.resolve(999999, by="editor")


def test_weekdays_due_skips_weekends() -> None:
    assert weekdays_due(dt.date(2026, 3, 2)) == dt.date(2026, 3, 16)  # Monday: two weeks
    assert weekdays_due(dt.date(2026, 3, 6)) == dt.date(2026, 3, 20)  # Friday
    assert weekdays_due(dt.date(2026, 3, 7)) == dt.date(2026, 3, 20)  # Saturday: from Monday


def test_anchor_of_labels() -> None:
    assert article_anchor("二(二)") == "a-二-二" and article_anchor("二.4") == "a-二-4"
    assert article_link("p-1", "三(二)1") == "/policies/p-1#a-%E4%B8%89-%E4%BA%8C-1"


# --- tag catalogue ---------------------------------------------------------------------------


def _catalogue(tmp_path: Path) -> Path:
    p = tmp_path / "tags.csv"
    p.write_text(
        "标签,同义词,分类,说明\n就业创业,就业、创业,人社,\n社会保险,社保|五险,人社,\n政务公开,公开,办公室,\n",
        "utf-8-sig",
    )
    return p


def test_tag_catalogue_import_synonyms_and_policy_tags(engine: Engine, tmp_path: Path) -> None:
    sessions = make_sessionmaker(engine)
    cat = TagCatalogue(sessions)
    assert cat.canonical(["随便", "随便"]) == ["随便"]  # no catalogue yet: anything goes
    assert cat.import_file(_catalogue(tmp_path)) == 3
    assert [t.name for t in cat.list()] == ["就业创业", "社会保险", "政务公开"]
    assert cat.canonical(["就业", "创业", "社保"]) == ["就业创业", "社会保险"]
    with pytest.raises(UnknownTags) as exc:
        cat.canonical(["就业", "养老"])
    assert "养老" in exc.value.user_message
    store = PolicyStore(sessions)
    rec = store.import_text(NEW_TEXT, id="p-2025", tags=["就业", "公开"])
    assert rec.tags == ("就业创业", "政务公开")
    with pytest.raises(UnknownTags):
        store.import_text(NEW_TEXT, id="p-2025", tags=["养老"])
    assert store.get("p-2025").tags == ("就业创业", "政务公开")  # refused: nothing changed
    assert [r.id for r in store.library(tag="就业创业")] == ["p-2025"]


def test_tag_catalogue_xlsx_and_bad_rows(engine: Engine, tmp_path: Path) -> None:
    cat = TagCatalogue(make_sessionmaker(engine))
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["标签", "同义词"], ["就业创业", "就业"], ["社会保险", "就业"], ["社会保险", ""]):
        ws.append(row)
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with pytest.raises(InvalidInput) as exc:
        cat.import_file(bad)
    msg = exc.value.user_message
    assert "第3行" in msg and "第2行" in msg and "第4行" in msg
    assert cat.list() == []  # all or nothing
    txt = tmp_path / "x.txt"
    txt.write_text("标签\n就业\n", "utf-8")
    with pytest.raises(InvalidInput):  # csv or xlsx only
        cat.import_file(txt)


def test_faq_import_refuses_tags_outside_the_catalogue_with_row_number(
    engine: Engine, tmp_path: Path
) -> None:
    sessions = make_sessionmaker(engine)
    TagCatalogue(sessions).import_file(_catalogue(tmp_path))
    faqs = FaqStore(sessions)
    f = tmp_path / "faq.csv"
    f.write_text(
        "标准问题,答案,标签\n失业了怎么办,请到街道就业服务站登记。,就业\n养老金怎么领,到社保中心办理。,养老\n",
        "utf-8-sig",
    )
    with pytest.raises(ImportFailed) as exc:
        faqs.import_file(f)
    assert [(e.row, e.column) for e in exc.value.errors] == [(3, "标签")]
    assert "养老" in str(exc.value) and faqs.list() == []
    f.write_text("标准问题,答案,标签\n失业了怎么办,请到街道就业服务站登记。,就业；社保\n", "utf-8-sig")
    faqs.import_file(f)
    assert faqs.list()[0].tags == ("就业创业", "社会保险")
    with pytest.raises(UnknownTags):
        faqs.add(by="cli", question="养老金怎么领", answer="到社保中心办理。", tags=["养老"])
