"""Policy documents: metadata extraction, passage splitting on the five seed documents and on
synthetic numbering schemes, file decoding, status and validity rules, and passage search."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import current_version
from knowledge.policies import (
    PassageHit,
    PolicyStore,
    cn_to_int,
    extract_metadata,
    normalise_doc_no,
    parse_cn_date,
    split_passages,
)

SEEDS = Path(__file__).resolve().parents[2] / "knowledge" / "demo" / "policies"
F000 = SEEDS / "000_c2b712b40e81b70c.txt"
F001 = SEEDS / "001_f12c200d7b8d244c.txt"
F002 = SEEDS / "002_bc6d6ea778388089.txt"
F003 = SEEDS / "003_143fac36c74db13c.txt"
F004 = SEEDS / "004_894efa64fb24051d.txt"


def _by_label(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in split_passages(path.read_text(encoding="utf-8")):
        out[p.label] = out.get(p.label, "") + p.text
    return out


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "青人社〔2023〕11号",
        "青人社[2023]11号",
        "青人社（2023）11号",
        "青人社(2023)11号",
        "青人社 〔2023〕 第11号",
        "青人社【2023】011号",
    ],
)
def test_doc_no_bracket_styles_normalise(raw: str) -> None:
    assert normalise_doc_no(raw) == "青人社〔2023〕11号"


def test_numerals_and_dates() -> None:
    assert [cn_to_int(x) for x in ("一", "十", "十一", "二十", "二十三", "一百零五", "二〇二三", "14")] == [
        1,
        10,
        11,
        20,
        23,
        105,
        2023,
        14,
    ]
    assert parse_cn_date("2023年3月31日") == dt.date(2023, 3, 31)
    assert parse_cn_date("二〇二三年三月三十一日") == dt.date(2023, 3, 31)
    assert parse_cn_date("（2024年5月14日）") == dt.date(2024, 5, 14)
    assert parse_cn_date("于2023年3月31日前公开") is None
    assert parse_cn_date("2023年2月30日") is None


# --- metadata from the seed headers ---------------------------------------------------------


def test_metadata_of_000_header() -> None:
    meta = extract_metadata(F000.read_text(encoding="utf-8"))
    assert meta.title == "2023年青浦区人力资源和社会保障局政务公开工作要点"
    assert meta.doc_no == "青人社〔2023〕11号"  # not the 沪委办发〔2017〕14号 quoted in the preface
    assert meta.issuer == "青浦区人力资源和社会保障局"
    assert meta.issued_on == dt.date(2023, 3, 31)


def test_metadata_of_markdown_001_with_signature_at_the_end() -> None:
    meta = extract_metadata(F001.read_text(encoding="utf-8"))
    assert meta.doc_no == "徐府发〔2023〕32号"
    assert meta.issuer == "上海市青浦区徐泾镇人民政府"
    assert meta.issued_on == dt.date(2023, 6, 6)
    assert meta.title is not None and "徐泾镇2023年政务公开工作要点" in meta.title
    assert "#" not in meta.title and " " not in meta.title


def test_metadata_without_doc_no() -> None:
    meta = extract_metadata(F002.read_text(encoding="utf-8"))
    assert meta.title == "2024年静安区政务公开工作要点"
    assert meta.doc_no is None
    assert meta.issuer == "上海市静安区人民政府办公室"
    assert meta.issued_on == dt.date(2024, 5, 14)
    meta4 = extract_metadata(F004.read_text(encoding="utf-8"))
    assert meta4.title == "上海市人力资源和社会保障局推进政务公开工作的实施办法"
    assert meta4.issued_on == dt.date(2019, 1, 22)


def test_metadata_absent_when_document_has_no_header() -> None:
    meta = extract_metadata(F003.read_text(encoding="utf-8"))
    assert (meta.title, meta.doc_no, meta.issuer, meta.issued_on) == (None, None, None, None)


# --- passages of the seeds ------------------------------------------------------------------


def test_000_passages() -> None:
    parts = _by_label(F000)
    assert "20个工作日内完成答复" in parts["二(二)"]
    assert parts["二(二)"].startswith("（二）妥善处理依申请公开")
    assert "超出知识库范围" in parts["三(二)"]
    assert "印发给你们" in parts["印发通知"]
    assert parts["前言"].startswith("为夯实政务公开工作基础")
    # paragraph broken across a blank line in the source is glued back
    assert "实施过程中出现的新情况" in parts["三(一)"]
    assert list(parts)[:3] == ["印发通知", "前言", "一(一)"]
    assert "五(二)" in parts and "一" not in parts  # heading-only 一、总体要求 is context only


def test_000_heading_context() -> None:
    p = next(x for x in split_passages(F000.read_text(encoding="utf-8")) if x.label == "二(二)")
    assert p.heading == "二、围绕标准化、制度化、规范化夯实工作基础"


def test_001_markdown_and_continuous_numbering() -> None:
    parts = _by_label(F001)
    assert "政策留言板" in parts["二.5"] and "常见问题解答清单" in parts["二.5"]
    assert "反馈制文单位" in parts["二.6"]  # text continued after a page break
    assert "留言选登" in parts["三.14"]
    assert "个人隐私" in parts["四.18"]
    assert parts["一(一)"].startswith("（一）指导思想\n坚持")  # heading-only line then its body
    numbered = [label for label in parts if "." in label]
    assert len(numbered) == 28
    assert "徐泾镇人民政府" not in parts["五.28"] and "2023年6月6日" not in parts["五.28"]
    assert not any("#" in t or "**" in t for t in parts.values())


def test_002_labels_and_page_furniture_dropped() -> None:
    parts = _by_label(F002)
    assert "政策留言板" in parts["二.4"] and "专题调查" in parts["二.4"]
    assert "订阅" in parts["二.3"]
    assert "印发给你们" in parts["印发通知"]
    assert parts["五.4"].endswith("予以公开。")
    everything = "".join(parts.values())
    assert "错误类" not in everything and "您的姓名" not in everything
    assert sum(1 for label in parts if label.startswith("五.")) == 4


def test_003_half_width_parentheses_continuous_across_sections() -> None:
    parts = _by_label(F003)
    assert "12333" in parts["四(十三)"] and "知识库" in parts["四(十三)"]
    assert "废止、失效" in parts["三(五)"]
    assert parts["一"].startswith("一、指导思想\n")
    assert "组 长" in parts["五(一)"]
    assert set(parts) >= {"前言", "二(一)", "三(十二)", "四(十四)", "五(三)"}


def test_004_cover_letter_and_articles() -> None:
    parts = _by_label(F004)
    assert "申请量大、重复性高" in parts["二(五)"]
    assert "印发给你们" in parts["印发通知"]
    assert "提出如下实施办法" in parts["前言"]


# --- synthetic numbering schemes -------------------------------------------------------------

SYNTHETIC = """某区政务服务办公室关于印发《测试实施办法》的通知
测政办[2024]7号
各单位：
现将《测试实施办法》印发给你们，请遵照执行。
某区政务服务办公室
2024年1月5日
一、总则
（一）目的。为规范管理，制定本办法。
二、具体措施
（一）加强咨询
1．建立留言板。群众可在网上留言。
2．建立知识库。
（1）每月更新一次知识库。
（2）每季度通报一次。
（二）规范答复
1、限时答复。收到留言后5个工作日内答复。
"""


def test_synthetic_nesting_labels() -> None:
    parts = _by_label_text(SYNTHETIC)
    assert "建立留言板" in parts["二(一)1"]
    assert "每月更新" in parts["二(一)2(1)"]
    assert "每季度" in parts["二(一)2(2)"]
    assert "5个工作日" in parts["二(二)1"]
    assert "一(一)" in parts and "印发通知" in parts
    meta = extract_metadata(SYNTHETIC)
    assert meta.title == "测试实施办法" and meta.doc_no == "测政办〔2024〕7号"
    assert meta.issuer == "某区政务服务办公室" and meta.issued_on == dt.date(2024, 1, 5)


def _by_label_text(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in split_passages(text):
        out[p.label] = out.get(p.label, "") + p.text
    return out


def test_out_of_sequence_number_is_not_a_new_article() -> None:
    text = "一、要求\n1.第一条内容。\n2.第二条内容。\n3.第三条内容，列举如下：\n1.这是引用的编号\n4.第四条内容。\n"
    parts = _by_label_text(text)
    assert list(parts) == ["一.1", "一.2", "一.3", "一.4"]
    assert "这是引用的编号" in parts["一.3"]


def test_long_passage_is_split_at_sentence_ends_with_same_label() -> None:
    sentence = "各单位应当按照规定及时公开政策文件并做好解读工作。"
    text = "一、总体要求\n（一）公开要求。" + sentence * 60 + "\n（二）其他。简短。"
    passages = [p for p in split_passages(text, max_chars=600) if p.label == "一(一)"]
    assert len(passages) >= 3
    assert all(len(p.text) <= 600 for p in passages)
    assert all(p.text.endswith("。") for p in passages)
    assert "".join(p.text for p in passages).count(sentence) == 60
    assert passages[1].heading.endswith("（一）公开要求")


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store(engine: Engine) -> PolicyStore:
    return PolicyStore(make_sessionmaker(engine), refresh_seconds=0.0)


def test_import_extracts_metadata_and_explicit_metadata_wins(store: PolicyStore, engine: Engine) -> None:
    rec = store.import_file(F000, id="qp")
    assert (rec.title, rec.doc_no, rec.issuer, rec.issued_on) == (
        "2023年青浦区人力资源和社会保障局政务公开工作要点",
        "青人社〔2023〕11号",
        "青浦区人力资源和社会保障局",
        dt.date(2023, 3, 31),
    )
    assert rec.source_file == F000.name and rec.status == "有效" and rec.passage_count >= 10
    rec2 = store.import_file(
        F000, id="qp", title="自定义标题", doc_no="青人社[2023]12号", issued_on="2023-04-01", issuer="某局"
    )
    assert (rec2.title, rec2.doc_no, rec2.issuer, rec2.issued_on) == (
        "自定义标题",
        "青人社〔2023〕12号",
        "某局",
        dt.date(2023, 4, 1),
    )
    assert rec2.seq > rec.seq
    with make_sessionmaker(engine)() as s:
        assert current_version(s) == rec2.seq
    labels = [p.label for p in store.passages("qp")]
    assert "二(二)" in labels and len(labels) == rec2.passage_count


def test_reimport_identical_content_changes_nothing(store: PolicyStore, engine: Engine) -> None:
    first = store.import_file(F002, id="ja")
    ids = [p.id for p in store.passages("ja")]
    again = store.import_file(F002, id="ja")
    assert again.seq == first.seq
    assert [p.id for p in store.passages("ja")] == ids
    with make_sessionmaker(engine)() as s:
        assert current_version(s) == first.seq


def test_conflicts(store: PolicyStore) -> None:
    store.import_file(F000, id="a")
    with pytest.raises(Conflict):
        store.import_file(F000, id="a", replace=False)
    with pytest.raises(Conflict):  # same 文号 under another id
        store.import_file(F000, id="b")


def test_missing_title_is_a_clear_error(store: PolicyStore) -> None:
    with pytest.raises(InvalidInput) as exc:
        store.import_file(F003)
    assert "标题" in exc.value.user_message
    rec = store.import_file(F003, title="某市人社局新时代政务公开实施方案")
    assert rec.id.startswith("policy-") and rec.doc_no is None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings(store: PolicyStore, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(F000.read_text(encoding="utf-8").encode(encoding))
    rec = store.import_file(path)
    assert rec.doc_no == "青人社〔2023〕11号"
    assert any("20个工作日" in p.text for p in store.passages(rec.id))


def test_bad_files_rejected(store: PolicyStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n\n")
    binary = tmp_path / "scan.txt"
    binary.write_bytes(b"PK\x03\x04\x00\x00" + bytes(range(256)) * 4)
    latin = tmp_path / "junk.md"
    latin.write_bytes(bytes([0x81, 0x30, 0xFF, 0xFE]) * 50)
    docx = tmp_path / "policy.docx"
    docx.write_bytes(b"whatever")
    for path in (empty, binary, latin, docx):
        with pytest.raises(InvalidInput) as exc:
            store.import_file(path)
        assert exc.value.user_message
    with pytest.raises(NotFound):
        store.import_file(tmp_path / "missing.txt")
    with pytest.raises(InvalidInput):
        store.import_text("   ")
    with pytest.raises(InvalidInput):
        store.import_file(F000, status="作废")
    with pytest.raises(InvalidInput):
        store.import_file(F000, issued_on="去年")
    assert store.list() == []


def test_status_changes_and_is_current(store: PolicyStore) -> None:
    rec = store.import_file(F000, id="qp")
    assert store.is_current("qp") is True
    assert store.is_current("青人社[2023]11号") is True  # by 文号, any bracket style
    assert store.is_current("nope") is None
    revised = store.set_status("qp", "已修订", by="admin")
    assert revised.status == "已修订" and revised.seq > rec.seq
    assert store.is_current("qp") is True
    for status in ("失效", "废止"):
        store.set_status("qp", status, by="admin")
        assert store.is_current("qp") is False
    same = store.set_status("qp", "废止", by="admin")
    assert same.seq == store.get("qp").seq  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        store.set_status("qp", "作废", by="admin")
    with pytest.raises(NotFound):
        store.set_status("nope", "有效", by="admin")
    assert store.find("《2023年青浦区人力资源和社会保障局政务公开工作要点》").id == "qp"  # type: ignore[union-attr]
    assert [r.id for r in store.list()] == ["qp"]


def test_faq_validity(store: PolicyStore) -> None:
    store.import_file(F000, id="qp")
    today = dt.date(2024, 6, 1)
    assert store.faq_validity("qp", None, None, today) == (True, None)
    assert store.faq_validity(None, None, None, today) == (True, None)
    assert store.faq_validity("unknown-policy", None, None, today) == (True, None)
    assert store.faq_validity("qp", None, dt.date(2023, 12, 31), today) == (
        False,
        "已超过有效期（2023-12-31）",
    )
    ok, reason = store.faq_validity("qp", dt.date(2025, 1, 1), None, today)
    assert not ok and reason is not None and reason.startswith("尚未生效")
    assert store.faq_validity("qp", dt.date(2024, 1, 1), dt.date(2024, 6, 1), today) == (True, None)
    store.set_status("qp", "已修订", by="admin")
    assert store.faq_validity("qp", None, None, today) == (True, "来源文件已修订")
    store.set_status("qp", "废止", by="admin")
    assert store.faq_validity("青人社〔2023〕11号", None, None, today) == (False, "来源文件已废止")
    store.set_status("qp", "失效", by="admin")
    assert store.faq_validity("qp", None, None, today) == (False, "来源文件已失效")


def test_citation() -> None:
    hit = PassageHit(
        "qp",
        1,
        "二(二)",
        "……",
        0.9,
        "2023年青浦区人力资源和社会保障局政务公开工作要点",
        "青人社〔2023〕11号",
        "有效",
        "青浦区人力资源和社会保障局",
    )
    assert (
        hit.citation() == "《2023年青浦区人力资源和社会保障局政务公开工作要点》（青人社〔2023〕11号）二(二)"
    )
    nodoc = PassageHit("ja", 2, "二.4", "……", 0.9, "2024年静安区政务公开工作要点", None, "已修订", None)
    assert nodoc.citation() == "《2024年静安区政务公开工作要点》二.4（该文件已修订）"


@pytest.fixture
def loaded(store: PolicyStore) -> PolicyStore:
    store.import_file(F000, id="qingpu")
    store.import_file(F001, id="xujing", title="徐泾镇2023年政务公开工作要点")
    store.import_file(F002, id="jingan")
    store.import_file(F003, id="city", title="某市人社局新时代政务公开实施方案")
    store.import_file(F004, id="shanghai")
    return store


SEARCH_CASES = [
    ("提交了信息公开申请什么时候能回复", "qingpu", "二(二)"),
    ("政策留言板增设政策评价与建议窗口", "jingan", "二.4"),
    ("12333互动咨询知识库", "city", "四(十三)"),
    ("申请量大重复性高的依申请公开信息会主动公开吗", "shanghai", "二(五)"),
    ("领导信箱办理时限和留言选登", "xujing", "三.14"),
]


def test_search_finds_the_passage(loaded: PolicyStore) -> None:
    for query, policy, label in SEARCH_CASES:
        hits = loaded.search(query, k=3)
        assert hits, query
        assert (hits[0].policy_id, hits[0].label) == (policy, label), query
        assert 0.0 < hits[0].score <= 1.0
        assert hits == sorted(hits, key=lambda h: -round(h.score, 3))
        assert len(loaded.search(query, k=1)) == 1


def test_inactive_policies_excluded_and_revised_flagged(loaded: PolicyStore) -> None:
    query = "12333互动咨询知识库"
    assert loaded.search(query)[0].policy_id == "city"
    loaded.set_status("city", "废止", by="admin")
    assert all(h.policy_id != "city" for h in loaded.search(query, k=10))
    inactive = loaded.search(query, k=3, include_inactive=True)
    assert inactive[0].policy_id == "city" and inactive[0].status == "废止"
    assert inactive[0].citation().endswith("（该文件已废止）")
    loaded.set_status("city", "已修订", by="admin")
    revised = loaded.search(query)
    assert revised[0].policy_id == "city" and revised[0].status == "已修订"


def test_index_follows_new_imports(loaded: PolicyStore) -> None:
    assert not any(h.policy_id == "new" for h in loaded.search("电动自行车充电桩补贴", k=5))
    loaded.import_text("某区电动自行车充电桩补贴办法\n一、补贴标准\n（一）每个充电桩补贴500元。\n", id="new")
    hits = loaded.search("电动自行车充电桩补贴", k=3)
    assert hits and hits[0].policy_id == "new" and hits[0].label == "一(一)"


def test_search_of_nothing(loaded: PolicyStore) -> None:
    assert loaded.search("") == []
    assert loaded.search("   ") == []
    assert loaded.search("qwertyzzz") == []
