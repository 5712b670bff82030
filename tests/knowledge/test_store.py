"""FaqStore: CRUD, validation, versions, optimistic locking, the version stamp and changes_since,
index entries and synonym sets, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
from sqlalchemy import Engine

from knowledge.db import make_engine, make_sessionmaker
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.faqs import FaqRecord, FaqStore


@pytest.fixture
def store(engine: Engine) -> FaqStore:
    return FaqStore(make_sessionmaker(engine))


def _add(store: FaqStore, question: str = "依申请公开多久答复", **kw: Any) -> FaqRecord:
    kw.setdefault("answer", "收到申请之日起20个工作日内答复。详见 https://example.gov.cn/a")
    return store.add(by="alice", question=question, **kw)


def test_add_cleans_and_reads_back(store: FaqStore) -> None:
    rec = store.add(
        by="alice",
        question="  依申请公开\u200b 多久\t答复？\x07 ",
        answer="第一段\r\n\r\n\r\n\r\n第二段 https://example.gov.cn/x  \n",
        similar=[
            " 依申请公开多长时间答复 ",
            "依申请公开多长时间答复",
            "依申请公开多久答复?",
            "",
            "申请公开 要等几天",
        ],
        tags="政务公开，依申请公开；政务公开",
        unit=" 区政务公开办 ",
        source_policy="青人社〔2023〕11号",
        source_article="二(二)",
        valid_from="2024/01/01",
        valid_to="2026-12-31",
    )
    assert re.fullmatch(r"faq-\d{6}", rec.id)
    assert rec.question == "依申请公开 多久 答复？"
    assert rec.answer == "第一段\n\n第二段 https://example.gov.cn/x"
    # trimmed, deduplicated, and the phrasing equal to the question (normalised) dropped
    assert rec.similar == ("依申请公开多长时间答复", "申请公开 要等几天")
    assert rec.tags == ("政务公开", "依申请公开")
    assert rec.unit == "区政务公开办"
    assert (rec.valid_from, rec.valid_to) == (dt.date(2024, 1, 1), dt.date(2026, 12, 31))
    assert rec.status == "published" and rec.updated_by == "alice" and rec.seq == store.version()
    assert store.get(rec.id) == rec == store.require(rec.id)
    assert rec.is_valid_on(dt.date(2025, 6, 1))
    assert not rec.is_valid_on(dt.date(2023, 12, 31)) and not rec.is_valid_on(dt.date(2027, 1, 1))


def test_get_missing_and_require(store: FaqStore) -> None:
    assert store.get("nope") is None
    with pytest.raises(NotFound) as exc:
        store.require("nope")
    assert "未找到" in exc.value.user_message


def test_generated_ids_skip_taken_ones(store: FaqStore) -> None:
    _add(store, "问题一", id="faq-000001")
    _add(store, "问题二", id="faq-000002")
    third = _add(store, "问题三")
    assert third.id == "faq-000003"
    with pytest.raises(Conflict):
        _add(store, "问题四", id="faq-000001")
    assert store.count() == 3


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"question": "   "}, "标准问题不能为空"),
    ({"question": "问" * 501}, "标准问题过长"),
    ({"answer": ""}, "必须填写答案"),
    ({"status": "online"}, "状态无效"),
    ({"valid_from": "2024-13-01"}, "日期"),
    ({"valid_from": "next monday"}, "日期格式无法识别"),
    ({"valid_from": "2025-01-01", "valid_to": "2024-01-01"}, "早于生效日期"),
    ({"id": "has space"}, "编号无效"),
    ({"similar": ["甲|乙"]}, "分隔符"),
]


def test_add_rejects_bad_input(store: FaqStore) -> None:
    for kwargs, fragment in BAD_INPUT:
        args: dict[str, Any] = {"question": "社保卡怎么补办", "answer": "到窗口办理"}
        args.update(kwargs)
        with pytest.raises(InvalidInput) as exc:
            store.add(by="alice", **args)
        assert fragment in exc.value.user_message, (kwargs, exc.value.user_message)
        assert store.count() == 0 and store.version() == 0


def test_draft_may_have_no_answer_but_cannot_be_published(store: FaqStore) -> None:
    rec = store.add(by="alice", question="新政策什么时候实施", status="草稿")
    assert rec.status == "draft" and rec.answer == ""
    with pytest.raises(InvalidInput, match="answer"):
        store.publish(rec.id, by="bob")
    store.edit(rec.id, by="bob", answer="自2025年1月1日起实施。")
    assert store.publish(rec.id, by="bob").status == "published"
    assert [v.action for v in store.history(rec.id)] == ["create", "edit", "publish"]


def test_list_filters_and_count(store: FaqStore) -> None:
    _add(store, "社保卡怎么补办", tags=["社保"], unit="人社局")
    _add(store, "医保怎么报销", tags=["医保", "社保"], unit="医保局", similar=["看病报销流程"])
    _add(store, "公积金提取条件", tags=["公积金"], unit="公积金中心", status="draft")
    _add(store, "100%_特殊字符问题", tags=["社保_x"])
    assert store.count() == 4
    assert store.count(status="draft") == 1 and store.count(status="已发布") == 3
    assert {r.question for r in store.list(tag="社保")} == {"社保卡怎么补办", "医保怎么报销"}
    assert [r.question for r in store.list(unit="医保局")] == ["医保怎么报销"]
    assert [r.question for r in store.list(text="报销 流程")] == ["医保怎么报销"]  # matches a phrasing
    assert [r.question for r in store.list(text="100%_")] == ["100%_特殊字符问题"]  # LIKE wildcards escaped
    assert store.list(text="%") == store.list(text="100%")
    assert len(store.list(limit=2)) == 2 and len(store.list(limit=2, offset=2)) == 2
    with pytest.raises(InvalidInput):
        store.list(status="bogus")


def test_edit_keeps_versions_with_who_and_what(store: FaqStore) -> None:
    rec = _add(store, "社保卡怎么补办", tags=["社保"])
    v1 = store.version()
    edited = store.edit(
        rec.id,
        by="bob",
        expected_seq=rec.seq,
        answer="携带身份证到任一网点办理。",
        tags=["社保", "社保卡"],
        valid_to="2030-01-01",
    )
    assert edited.seq == v1 + 1 == store.version() and edited.updated_by == "bob"
    hist = store.history(edited.id)
    assert [(v.version_no, v.action, v.by) for v in hist] == [(1, "create", "alice"), (2, "edit", "bob")]
    assert hist[1].changes == {
        "answer": [rec.answer, "携带身份证到任一网点办理。"],
        "tags": [["社保"], ["社保", "社保卡"]],
        "valid_to": [None, "2030-01-01"],
    }
    assert hist[1].snapshot["answer"] == "携带身份证到任一网点办理。" and hist[1].seq == edited.seq
    assert hist[0].changes["question"] == [None, "社保卡怎么补办"]
    # an edit that changes nothing (after cleaning) writes no version and keeps the stamp
    same = store.edit(edited.id, by="carol", answer=" 携带身份证到任一网点办理。 ", tags="社保，社保卡")
    assert same == edited and store.version() == v1 + 1 and len(store.history(edited.id)) == 2
    with pytest.raises(InvalidInput):
        store.edit(edited.id, by="bob", colour="red")
    with pytest.raises(InvalidInput):
        store.edit(edited.id, by="bob", question="")
    with pytest.raises(NotFound):
        store.edit("missing", by="bob", answer="x")
    with pytest.raises(NotFound):
        store.history("missing")


def test_optimistic_lock_conflict(store: FaqStore) -> None:
    rec = _add(store, "社保卡怎么补办")
    seen = rec.seq
    store.edit(rec.id, by="bob", expected_seq=seen, answer="版本B")
    version = store.version()
    with pytest.raises(Conflict) as exc:
        store.edit(rec.id, by="carol", expected_seq=seen, answer="版本C")
    assert "已被" in exc.value.user_message and "bob" in exc.value.user_message
    assert store.require(rec.id).answer == "版本B"
    assert store.version() == version and len(store.history(rec.id)) == 2


def test_concurrent_editors_one_wins(store: FaqStore) -> None:
    rec = _add(store, "社保卡怎么补办")
    outcomes: list[str] = []
    lock = threading.Lock()

    def editor(n: int) -> None:
        try:
            store.edit(rec.id, by=f"user{n}", expected_seq=rec.seq, answer=f"答案{n}")
            result = "ok"
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert len(store.history(rec.id)) == 2


def test_retire_publish_restore(store: FaqStore) -> None:
    rec = _add(store, "社保卡怎么补办", answer="旧答案")
    store.edit(rec.id, by="bob", answer="新答案")
    retired = store.retire(rec.id, by="carol", reason="政策已废止")
    assert retired.status == "retired"
    last = store.history(rec.id)[-1]
    assert (last.action, last.by, last.note, last.changes) == (
        "retire",
        "carol",
        "政策已废止",
        {"status": ["published", "retired"]},
    )
    assert store.retire(rec.id, by="carol") == retired  # already retired: no new version
    assert store.list(status="published") == []
    restored = store.restore(rec.id, 1, by="dave")
    assert (restored.status, restored.answer) == ("published", "旧答案")
    assert store.history(rec.id)[-1].action == "restore"
    with pytest.raises(NotFound):
        store.restore(rec.id, 99, by="dave")


def test_version_stamp_and_changes_since(store: FaqStore) -> None:
    assert store.version() == 0 and store.changes_since(0) == []
    a = _add(store, "问题A")
    b = _add(store, "问题B")
    mark = store.version()
    assert mark == b.seq == a.seq + 1
    store.edit(a.id, by="bob", answer="A的新答案")
    store.retire(b.id, by="bob")
    c = _add(store, "问题C")
    changed = store.changes_since(mark)
    assert [r.id for r in changed] == [a.id, b.id, c.id]
    assert changed[1].status == "retired"  # retired entries are reported so other windows drop them
    assert [r.seq for r in changed] == sorted(r.seq for r in changed)
    assert store.changes_since(store.version()) == []
    assert [r.id for r in store.changes_since(mark, limit=1)] == [a.id]


def test_version_visible_to_another_process(store: FaqStore, engine: Engine) -> None:
    """A second engine (as another worker would have) sees the new stamp right after the commit."""
    other_engine = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        other = FaqStore(make_sessionmaker(other_engine))
        before = other.version()
        rec = _add(store, "问题A")
        assert other.version() == before + 1
        assert [r.id for r in other.changes_since(before)] == [rec.id]
    finally:
        other_engine.dispose()


def test_index_entries(store: FaqStore) -> None:
    from knowledge.matcher import IndexEntry

    a = _add(store, "问题A", similar=["说法一", "说法二"], tags=["标签"])
    _add(store, "问题B", status="draft")
    c = _add(store, "问题C", valid_to="2020-12-31")
    entries = store.index_entries()
    assert all(isinstance(e, IndexEntry) for e in entries)
    assert [e.faq_id for e in entries] == [a.id, c.id]
    assert entries[0] == IndexEntry(a.id, "问题A", ("说法一", "说法二"), ("标签",))
    assert [e.faq_id for e in store.index_entries(valid_on=dt.date(2024, 1, 1))] == [a.id]
    assert len(store.index_entries(status=None)) == 3


def test_synonym_sets(store: FaqStore) -> None:
    v0 = store.version()
    sid = store.add_synonyms([" 社保 ", "社会保险", "社保", ""], by="alice")
    assert store.synonyms() == [["社保", "社会保险"]] and store.version() == v0 + 1
    other = store.add_synonyms("公积金，住房公积金", by="alice")
    assert store.synonyms() == [["社保", "社会保险"], ["公积金", "住房公积金"]]
    sets = store.synonym_sets()
    assert [s.id for s in sets] == [sid, other] and sets[0].updated_by == "alice"
    store.update_synonyms(sid, ["社保", "社会保险", "养老保险"], by="bob")
    assert store.synonyms()[0] == ["社保", "社会保险", "养老保险"] and store.version() == v0 + 3
    assert store.synonym_sets()[0].updated_by == "bob"
    store.update_synonyms(sid, ["社保", "社会保险", "养老保险"], by="bob")  # unchanged: no bump
    assert store.version() == v0 + 3
    with pytest.raises(Conflict):  # a term may belong to one set only
        store.add_synonyms(["住房公积金", "房积金"], by="alice")
    with pytest.raises(InvalidInput):
        store.add_synonyms(["独一个", " 独一个 "], by="alice")
    with pytest.raises(NotFound):
        store.update_synonyms(9999, ["a", "b"], by="bob")
    store.delete_synonyms(other, by="bob")
    assert store.synonyms() == [["社保", "社会保险", "养老保险"]] and store.version() == v0 + 4
    with pytest.raises(NotFound):
        store.delete_synonyms(other, by="bob")


def test_by_is_required(store: FaqStore) -> None:
    with pytest.raises(InvalidInput):
        store.add(by=" ", question="问题", answer="答案")
