"""FaqStore import/export: xlsx, csv (UTF-8, BOM, GBK) and jsonl; all-or-nothing validation with every
bad row reported; duplicates; dry runs; formula escaping; round trips; speed. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, event

from knowledge.db import make_engine, make_sessionmaker
from knowledge.faqs import FaqStore, ImportFailed

FAQ_JSONL = Path("/work/shared/data/faq.jsonl")
ZH_HEADER = [
    "编号",
    "标准问题",
    "相似问法",
    "答案",
    "标签",
    "制文单位",
    "来源文件",
    "条款",
    "生效日期",
    "失效日期",
    "状态",
    "办事链接",
]
EN_HEADER = [
    "id",
    "question",
    "similar",
    "answer",
    "tags",
    "unit",
    "source_policy",
    "source_article",
    "valid_from",
    "valid_to",
    "status",
]


@pytest.fixture
def store(engine: Engine) -> FaqStore:
    return FaqStore(make_sessionmaker(engine))


@pytest.fixture
def seeded(store: FaqStore) -> FaqStore:
    store.add(by="alice", id="old-1", question="社保卡怎么补办", answer="到任一网点补办。", tags=["社保"])
    return store


def state(store: FaqStore) -> tuple[int, int, list[dict[str, Any]]]:
    """Everything an import could change: count, version stamp and every record's content."""
    return store.count(), store.version(), [r.as_dict() | {"seq": r.seq} for r in store.list(limit=10**6)]


def write_xlsx(path: Path, rows: list[list[Any]], title: str | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    if title:
        ws.append([title])
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- formats ------------------------------------------------------------------------------------------
def test_import_shared_faq_jsonl_fast(store: FaqStore) -> None:
    with pytest.raises(ImportFailed) as exc:  # the evaluation set has no answers
        store.import_file(FAQ_JSONL)
    assert "已发布的问答必须填写答案" in str(exc.value) and store.count() == 0
    started = time.perf_counter()
    report = store.import_file(FAQ_JSONL, allow_empty_answer=True)
    assert time.perf_counter() - started < 1.0
    assert (report.fmt, report.rows, report.created) == ("jsonl", 254, 254)
    assert store.count(status="published") == 254 and report.version == store.version()
    rec = store.require("fin-0003")
    assert rec.similar == ("花呗中的钱能网上购买火车票吗",) and rec.tags == ("afqmc",)
    assert [v.action for v in store.history("fin-0003")] == ["import"]
    assert len(store.index_entries()) == 254


def test_import_xlsx_chinese_headers(store: FaqStore, tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "faq.xlsx",
        [
            ZH_HEADER + ["备注"],
            [
                101,
                "依申请公开多久答复",
                "依申请公开多长时间答复\n申请公开要等几天｜多久能答复|多久能答复",
                "收到申请之日起20个工作日内答复。",
                "政务公开，依申请；公开",
                "区政务公开办",
                "青人社〔2023〕11号",
                "二(二)",
                dt.datetime(2024, 1, 1),
                46022,
                "已发布",
                "https://zwfw.example.gov.cn/item/101",
                "内部备注",
            ],
            [
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            ],  # blank rows are skipped
            [
                "d-1",
                "新政策何时实施",
                None,
                None,
                "政策",
                None,
                None,
                None,
                "2025/3/1",
                "2025年12月31日",
                "草稿",
                None,
            ],
            ["r-1", "旧政策问题", None, "旧答案", None, None, None, None, None, None, "retired", None],
        ],
        title="2024年政策问答库",
    )
    report = store.import_file(path)
    assert (report.rows, report.created) == (3, 3)
    assert any("备注" in w for w in report.warnings)
    a = store.require("101")
    assert a.similar == ("依申请公开多长时间答复", "申请公开要等几天", "多久能答复")
    assert a.tags == ("政务公开", "依申请", "公开")
    assert (a.unit, a.source_policy, a.source_article) == ("区政务公开办", "青人社〔2023〕11号", "二(二)")
    assert (a.valid_from, a.valid_to) == (dt.date(2024, 1, 1), dt.date(2025, 12, 31))  # 46022 = Excel serial
    assert a.service_url == "https://zwfw.example.gov.cn/item/101"  # column 办事链接
    d = store.require("d-1")
    assert (d.status, d.answer, d.valid_from, d.valid_to) == (
        "draft",
        "",
        dt.date(2025, 3, 1),
        dt.date(2025, 12, 31),
    )
    assert store.require("r-1").status == "retired"


def test_import_csv_encodings(store: FaqStore, tmp_path: Path) -> None:
    rows = [
        EN_HEADER,
        [
            "c-1",
            "公积金怎么提取",
            "公积金提取流程",
            "携带身份证办理",
            "公积金",
            "公积金中心",
            "",
            "",
            "2024-01-01",
            "",
            "published",
        ],
    ]
    gbk = write_csv(
        tmp_path / "gbk.csv",
        [
            ZH_HEADER,
            [
                "g-1",
                "医保怎么报销",
                "看病报销|报销流程",
                "持医保卡结算",
                "医保；报销",
                "医保局",
                "",
                "",
                "",
                "",
                "已发布",
            ],
        ],
        "gbk",
    )
    assert store.import_file(gbk).created == 1
    assert store.require("g-1").similar == ("看病报销", "报销流程") and store.require("g-1").unit == "医保局"
    assert store.import_file(write_csv(tmp_path / "bom.csv", rows, "utf-8-sig")).created == 1
    rows[1][0] = "c-2"
    rows[1][1] = "公积金提取需要什么材料"
    assert store.import_file(write_csv(tmp_path / "plain.csv", rows, "utf-8")).created == 1
    rows[1][0] = "c-3"
    rows[1][1] = "公积金可以异地提取吗"
    path = tmp_path / "gb18030.txt"
    write_csv(path, rows, "gb18030")
    assert store.import_file(path, fmt="csv").created == 1
    assert store.count() == 4


def test_import_tab_separated_utf16_with_bom(store: FaqStore, tmp_path: Path) -> None:
    """Excel's "Unicode text" export: UTF-16 with BOM, tab separated."""
    text = "标准问题\t答案\r\n居住证怎么办理\t到社区事务受理中心办理\r\n"
    path = tmp_path / "unicode.csv"
    path.write_bytes(text.encode("utf-16"))
    assert store.import_file(path).created == 1
    assert store.list()[0].answer == "到社区事务受理中心办理"


# --- bad files: nothing changes, every problem reported -----------------------------------------------
def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    ok_row = ["n-1", "新问题", "", "答案", "", "", "", "", "", "", ""]
    files: dict[str, tuple[Path, str]] = {}
    files["missing_column"] = (
        write_csv(tmp_path / "nocol.csv", [["编号", "答案"], ["n-1", "答案"]]),
        "缺少必需的列",
    )
    files["missing_column_xlsx"] = (
        write_xlsx(tmp_path / "nocol.xlsx", [["编号", "问法", "答案"], ["n-1", "q", "a"]]),
        "缺少必需的列",
    )
    files["bad_date"] = (
        write_csv(
            tmp_path / "date.csv",
            [ZH_HEADER, ok_row, ["n-2", "问题二", "", "答案", "", "", "", "", "2024-02-30", "", ""]],
        ),
        "日期",
    )
    files["bad_date_xlsx"] = (
        write_xlsx(tmp_path / "date.xlsx", [ZH_HEADER, ok_row[:8] + ["明年", None, None]]),
        "日期格式无法识别",
    )
    files["duplicate_id"] = (
        write_csv(tmp_path / "dup.csv", [ZH_HEADER, ok_row, ["n-1", "另一个问题", "", "答案"]]),
        "编号 n-1 与第2行重复",
    )
    files["duplicate_id_jsonl"] = (
        write_jsonl(
            tmp_path / "dup.jsonl",
            [
                {"id": "j-1", "question": "问一", "answer": "答"},
                {"id": "j-1", "question": "问二", "answer": "答"},
            ],
        ),
        "编号 j-1 与第1行重复",
    )
    files["empty_question"] = (
        write_csv(tmp_path / "emptyq.csv", [ZH_HEADER, ok_row, ["n-2", " ", "", "答案"]]),
        "标准问题不能为空",
    )
    files["bad_status"] = (
        write_csv(tmp_path / "status.csv", [ZH_HEADER, ok_row[:10] + ["上架"]]),
        "状态无效",
    )
    files["dates_reversed"] = (
        write_csv(tmp_path / "rev.csv", [ZH_HEADER, ok_row[:8] + ["2025-01-01", "2024-01-01", ""]]),
        "早于生效日期",
    )
    files["empty_file"] = (tmp_path / "empty.csv", "文件为空")
    files["empty_file"][0].write_bytes(b"")
    files["blank_xlsx"] = (write_xlsx(tmp_path / "blank.xlsx", []), "没有内容")
    files["header_only"] = (write_csv(tmp_path / "header.csv", [ZH_HEADER]), "没有数据行")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("标准问题,答案\r\n社保怎么交,按月缴纳\r\n".encode("utf-16-le"))
    files["utf16_no_bom"] = (utf16, "编码无法识别")
    noise = tmp_path / "noise.csv"
    noise.write_bytes(bytes(range(256)) * 40)
    files["random_bytes"] = (noise, "编码无法识别")
    files["not_really_xlsx"] = (tmp_path / "fake.xlsx", "不是有效的 xlsx")
    files["not_really_xlsx"][0].write_text("编号,标准问题\n", encoding="utf-8")
    xlsx_as_csv = tmp_path / "book.csv"
    xlsx_as_csv.write_bytes(files["missing_column_xlsx"][0].read_bytes())
    files["xlsx_named_csv"] = (xlsx_as_csv, "Excel")
    files["legacy_xls"] = (tmp_path / "old.xls", ".xls")
    files["legacy_xls"][0].write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    files["bad_json_line"] = (tmp_path / "bad.jsonl", "不是有效的 JSON")
    files["bad_json_line"][0].write_text(
        '{"question": "问", "answer": "答"}\n{"question": \n', encoding="utf-8"
    )
    files["jsonl_no_question"] = (
        write_jsonl(tmp_path / "noq.jsonl", [{"id": "x", "answer": "答"}]),
        "缺少 question",
    )
    files["unknown_format"] = (tmp_path / "faq.docx", "无法识别的文件格式")
    files["unknown_format"][0].write_bytes(b"x")
    files["missing_file"] = (tmp_path / "nope.csv", "文件不存在")
    return files


BAD_CASES = [
    "missing_column",
    "missing_column_xlsx",
    "bad_date",
    "bad_date_xlsx",
    "duplicate_id",
    "duplicate_id_jsonl",
    "empty_question",
    "bad_status",
    "dates_reversed",
    "empty_file",
    "blank_xlsx",
    "header_only",
    "utf16_no_bom",
    "random_bytes",
    "not_really_xlsx",
    "xlsx_named_csv",
    "legacy_xls",
    "bad_json_line",
    "jsonl_no_question",
    "unknown_format",
    "missing_file",
]


def test_bad_files_are_rejected_and_store_unchanged(seeded: FaqStore, tmp_path: Path) -> None:
    files = _bad_files(tmp_path)
    assert sorted(files) == sorted(BAD_CASES)
    before = state(seeded)
    for case in BAD_CASES:  # one database per backend for all cases keeps the test fast
        path, fragment = files[case]
        with pytest.raises(ImportFailed) as exc:
            seeded.import_file(path)
        assert fragment in str(exc.value), (case, str(exc.value))
        assert exc.value.errors and exc.value.log_message, case
        assert state(seeded) == before, case


def test_every_bad_row_reported_with_row_and_column(seeded: FaqStore, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "many.csv",
        [
            ["编号", "标准问题", "答案", "生效日期", "失效日期", "状态"],
            ["a-1", "好问题", "好答案", "2024-01-01", "", ""],
            ["a-2", "", "答案", "", "", ""],
            ["a-3", "问题三", "答案", "2024/13/01", "", ""],
            ["a-1", "问题四", "答案", "", "", ""],
            ["a-5", "问题五", "", "", "", "已发布"],
            ["a-6", "问题六", "答案", "", "", "待定"],
        ],
    )
    before = state(seeded)
    with pytest.raises(ImportFailed) as exc:
        seeded.import_file(path)
    found = {(e.row, e.column) for e in exc.value.errors}
    assert found == {(3, "标准问题"), (4, "生效日期"), (5, "编号"), (7, "状态"), (6, "答案")}
    text = str(exc.value)
    assert "第4行「生效日期」" in text and "/ no such date" in text and "共 5 处错误" in text
    assert state(seeded) == before


def test_oversized_file_rejected_without_reading(seeded: FaqStore, tmp_path: Path) -> None:
    for name in ("huge.csv", "huge.xlsx", "huge.jsonl"):
        path = tmp_path / name
        with path.open("wb") as f:
            f.truncate(21 * 1024 * 1024)  # sparse: no blocks written
        before = state(seeded)
        started = time.perf_counter()
        with pytest.raises(ImportFailed) as exc:
            seeded.import_file(path)
        assert time.perf_counter() - started < 0.5
        assert "文件过大" in str(exc.value) and "20.0 MB" in str(exc.value)
        assert state(seeded) == before
    small = write_csv(tmp_path / "small.csv", [["标准问题", "答案"], ["问题", "答" * 200]])
    with pytest.raises(ImportFailed, match="文件过大"):
        seeded.import_file(small, max_bytes=100)


# --- duplicates and dry runs ---------------------------------------------------------------------------
def test_duplicates_by_id_and_by_question(seeded: FaqStore, tmp_path: Path) -> None:
    rows = [
        ["编号", "标准问题", "答案"],
        ["old-1", "社保卡怎么补办", "带身份证到网点补办。"],
        ["", "社保卡 怎么补办？", "不会用到"],
        ["", "新的问题", "新的答案"],
    ]
    path = write_csv(tmp_path / "dups.csv", rows)
    with pytest.raises(ImportFailed, match="指向同一条问答"):  # rows 2 and 3 both mean old-1
        seeded.import_file(path)
    path = write_csv(tmp_path / "dups2.csv", [rows[0], rows[2], rows[3]])
    before = state(seeded)
    with pytest.raises(ImportFailed) as exc:
        seeded.import_file(path, on_duplicate="error")
    assert [(e.row, e.column) for e in exc.value.errors] == [(2, "标准问题")] and "old-1" in str(exc.value)
    assert state(seeded) == before
    report = seeded.import_file(path, on_duplicate="skip")
    assert (report.created, report.skipped, report.skipped_ids) == (1, 1, ["old-1"])
    assert seeded.require("old-1").answer == "到任一网点补办。"
    report = seeded.import_file(write_csv(tmp_path / "upd.csv", [rows[0], rows[1]]), by="bob")
    assert (report.updated, report.updated_ids) == (1, ["old-1"])
    rec = seeded.require("old-1")
    assert rec.answer == "带身份证到网点补办。" and rec.tags == ("社保",)  # absent column: tags kept
    last = seeded.history("old-1")[-1]
    assert (last.action, last.by, last.changes) == (
        "import",
        "bob",
        {"answer": ["到任一网点补办。", "带身份证到网点补办。"]},
    )
    version = seeded.version()
    report = seeded.import_file(write_csv(tmp_path / "same.csv", [rows[0], rows[1]]))
    assert (report.unchanged, report.updated, report.version) == (1, 0, None) and seeded.version() == version


def test_dry_run_writes_nothing(seeded: FaqStore, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "dry.jsonl",
        [
            {"id": "old-1", "question": "社保卡怎么补办", "answer": "新答案"},
            {"question": "全新问题", "answer": "答案", "tags": ["新"]},
        ],
    )
    before = state(seeded)
    report = seeded.import_file(path, dry_run=True)
    assert (report.dry_run, report.created, report.updated, report.version) == (True, 1, 1, None)
    assert "试导入" in report.summary()
    assert state(seeded) == before
    bad = write_jsonl(
        tmp_path / "drybad.jsonl", [{"id": "old-1", "question": "社保卡怎么补办", "answer": ""}]
    )
    with pytest.raises(ImportFailed, match="必须填写答案"):
        seeded.import_file(bad, dry_run=True)
    assert seeded.import_file(path).created == 1 and seeded.count() == 2


# --- export, formula escaping, round trips -------------------------------------------------------------
def _fill(store: FaqStore) -> None:
    store.add(
        by="a",
        id="f-1",
        question="=1+1 是什么",
        answer="+86 12345 热线\n第二行 https://example.gov.cn/?a=1&b=2",
        similar=["-减号开头的问法", "@提到", "'引号开头"],
        tags=["-标签", "社保"],
        unit="@单位",
        source_policy="沪人社规〔2019〕1号",
        source_article="二(五)",
        valid_from="2024-01-01",
        valid_to="2026-12-31",
    )
    store.add(by="a", id="f-2", question="'=看起来已转义的问题", status="draft")
    store.add(by="a", id="f-3", question="已下线的问题", answer="旧答案", status="retired", tags="旧，政策")
    store.add(
        by="a",
        question="普通问题，带“引号”和,逗号",
        answer='答案里有"双引号"、逗号,以及\t制表符',
        similar=["普通说法一", "普通说法二"],
    )


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "jsonl"])
def test_round_trip_into_fresh_store(engine: Engine, tmp_path: Path, fmt: str) -> None:
    """Export from one store, import into an empty one (the backend under test): same records."""
    source_engine = make_engine(f"sqlite:///{tmp_path / 'source.db'}")
    from bot.database import upgrade

    upgrade(source_engine)
    try:
        source = FaqStore(make_sessionmaker(source_engine))
        _fill(source)
        path = tmp_path / f"export.{fmt}"
        assert source.export_file(path) == 4
        target = FaqStore(make_sessionmaker(engine))
        report = target.import_file(path)
        assert report.created == 4
        assert [r.as_dict() for r in target.list()] == [r.as_dict() for r in source.list()]
        # a second export of the imported store is identical content, and re-importing changes nothing
        again = tmp_path / f"again.{fmt}"
        target.export_file(again)
        assert target.import_file(again).unchanged == 4
        assert source.export_file(tmp_path / f"pub.{fmt}", status="published") == 2
    finally:
        source_engine.dispose()


def test_export_escapes_formulas(store: FaqStore, tmp_path: Path) -> None:
    _fill(store)
    store.export_file(tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM so that Excel picks UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == ZH_HEADER
    first = rows[1]
    assert first[1] == "'=1+1 是什么" and first[3].startswith("'+86") and first[5] == "'@单位"
    assert first[2] == "'-减号开头的问法\n@提到\n'引号开头" and first[4] == "'-标签，社保"
    assert first[10] == "已发布" and rows[2][1] == "''=看起来已转义的问题"
    store.export_file(tmp_path / "out.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == ZH_HEADER
    assert ws["B2"].value == "'=1+1 是什么" and ws["B2"].data_type == "s"  # text, not a formula
    assert ws["I2"].value == dt.datetime(2024, 1, 1)
    wb.close()
    jsonl = tmp_path / "out.jsonl"
    store.export_file(jsonl)
    first_obj = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert (
        first_obj["question"] == "=1+1 是什么" and first_obj["valid_from"] == "2024-01-01"
    )  # no escaping in jsonl


def test_export_is_atomic_on_error(store: FaqStore, tmp_path: Path) -> None:
    _fill(store)
    target = tmp_path / "out.csv"
    target.write_text("previous export", encoding="utf-8")
    with pytest.raises(ImportFailed):
        store.export_file(tmp_path / "out.doc")
    assert target.read_text(encoding="utf-8") == "previous export"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export-")] == []


# --- scale ------------------------------------------------------------------------------------------------
def test_large_import_is_bulk(store: FaqStore, tmp_path: Path) -> None:
    n = 5_000  # bench: 10,000 rows take about 2 s on an idle 2-core machine
    rows = [ZH_HEADER] + [
        [
            f"big-{i:05d}",
            f"第{i}号政策问题怎么办理",
            f"第{i}号问法一|第{i}号问法二",
            f"第{i}号答案",
            "批量，测试",
            "单位甲",
            f"文号{i % 50}",
            "一",
            "2024-01-01",
            "",
            "已发布",
        ]
        for i in range(n)
    ]
    path = write_csv(tmp_path / "big.csv", rows)
    engine = store._sessions.kw["bind"]
    statements = [0]

    def count(*_: object) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    report = store.import_file(path)
    created_with = statements[0]
    assert report.created == n and store.count() == n
    for row in rows[1:]:
        row[3] = row[3] + "（修订）"
    write_csv(path, rows)
    statements[0] = 0
    report = store.import_file(path)
    updated_with = statements[0]
    event.remove(engine, "before_cursor_execute", count)
    assert (
        report.updated == n
        and store.history(f"big-{n - 1:05d}")[-1].changes["answer"][1] == f"第{n - 1}号答案（修订）"
    )
    # bulk: statements in batches, never one (or more) per row (counted, not timed: bench/ times it)
    assert created_with < n / 20 and updated_with < n / 20, (created_with, updated_with)
    assert len(store.changes_since(report.version - 1, limit=100)) == n  # one change: never split  # type: ignore[operator]


def test_import_does_not_leave_partial_rows_when_write_fails(seeded: FaqStore, tmp_path: Path) -> None:
    """A failure in the write phase rolls back the whole import (one transaction)."""
    path = write_jsonl(tmp_path / "ok.jsonl", [{"question": f"问题{i}", "answer": "答"} for i in range(50)])
    before = state(seeded)
    original = FaqStore._write_plan

    def failing(self: FaqStore, s: Any, plan: Any, seq: int, who: str) -> None:
        original(self, s, plan, seq, who)
        raise OSError("disk full")

    FaqStore._write_plan = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(OSError):
            seeded.import_file(path)
    finally:
        FaqStore._write_plan = original  # type: ignore[method-assign]
    assert state(seeded) == before
    assert os.path.exists(path)
