"""`policybot kb export FILE --format 12345`: the hotline knowledge points of a store of more than 1,000
FAQs pass a validator written here from the rules alone (not the exporter's own): the six columns,
unique titles of at most 128 characters, keywords of at most 20 characters that are not the title,
files split at 1,000 rows; duplicates are told apart by their drafting unit, long titles cut, and
data no rule can fix is refused with its row numbers before anything is written."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot import cli
from bot.database import upgrade
from bot.settings import get_settings
from knowledge.db import make_engine, make_sessionmaker
from knowledge.faqs import FaqStore
from knowledge.faqs.hotline_rules import check

Run = Callable[..., tuple[int, str, str]]
HEADER = ["类目", "标题", "内容", "发文单位", "材料性质", "关键字"]
UNITS = ["青浦区人力资源和社会保障局", "青浦区医疗保障局", "静安区发展和改革委员会"]
TOPICS = ["失业保险金", "灵活就业社保", "职业技能培训补贴", "医保异地就医", "创业担保贷款"]
LONG = "关于" + "我公司在本区注册并缴纳社会保险满三年以后申请稳岗返还和一次性扩岗补助" * 4 + "应当怎么办理"


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield _run
    get_settings.cache_clear()


def _faq(i: int, **fields: Any) -> dict[str, Any]:
    topic = TOPICS[i % len(TOPICS)]
    row = {
        "id": f"f{i:04d}",
        "question": f"{topic}第{i}号事项怎么申请",
        "answer": f"{topic}第{i}号事项请向窗口提交申请材料，20个工作日内办结。",
        "tags": [topic],
        "unit": UNITS[i % len(UNITS)],
        "status": "published",
    }
    row.update(fields)
    return row


def _load(db_url: str, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / "seed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    FaqStore(make_sessionmaker(engine)).import_file(path, allow_empty_answer=True)
    engine.dispose()


def _rows_of(path: Path) -> list[list[str]]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            return [list(r) for r in csv.reader(f)]
    ws = load_workbook(path, read_only=True).worksheets[0]
    return [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]


def _independent_check(files: list[Path]) -> list[list[str]]:
    """The rules of the hotline knowledge-point shape, checked on the files as written."""
    data: list[list[str]] = []
    for f in files:
        rows = _rows_of(f)
        assert rows[0] == HEADER, f
        assert 1 <= len(rows) - 1 <= 1000, f"{f} has {len(rows) - 1} rows"
        data.extend(rows[1:])
    titles = [r[1] for r in data]
    assert len(set(titles)) == len(titles), "titles are unique"
    for category, title, content, unit, nature, keywords in data:
        assert category and title and content and unit and nature == "政策问答"
        assert len(title) <= 128 and len(keywords) <= 20 and keywords != title
    return data


def test_large_store_splits_at_1000_rows_and_keeps_every_rule(db_url: str, tmp_path: Path, run: Run) -> None:
    rows = [_faq(i) for i in range(1, 1201)]
    rows += [
        _faq(1201, question="失业金怎么领", unit=UNITS[0]),
        _faq(1202, question="失业金怎么领？", unit=UNITS[1]),  # the same question for another unit
        _faq(1203, question=LONG),
        _faq(1204, question="社保", tags=["社保"]),  # the only key term is the title itself
        _faq(1205, question="=社保卡怎么补办", status="draft"),  # not published: not exported
    ]
    _load(db_url, tmp_path, rows)
    code, out, err = run("kb", "export", str(tmp_path / "out" / "kb.xlsx"), "--format", "12345")
    assert code == 0, err
    files = [tmp_path / "out" / "kb-1.xlsx", tmp_path / "out" / "kb-2.xlsx"]
    assert sorted((tmp_path / "out").iterdir()) == files and "1204 条" in out
    data = _independent_check(files)
    assert len(_rows_of(files[0])) == 1001 and len(data) == 1204
    by_title = {r[1]: r for r in data}
    assert "失业金怎么领" in by_title and f"失业金怎么领？（{UNITS[1]}）" in by_title
    long_title = next(t for t in by_title if t.startswith("关于我公司"))
    assert len(long_title) == 128 and long_title.endswith("…") and LONG.startswith(long_title[:-1])
    assert by_title["社保"][5] == ""
    first = by_title["失业保险金第5号事项怎么申请"]
    assert first[0] == "失业保险金" and first[3] == UNITS[2] and "失业保险金" in first[5]
    assert "怎么" not in first[5], "question words are not key terms"

    code, _, err = run("kb", "export", str(tmp_path / "drafts.csv"), "--format", "12345", "--status", "draft")
    assert code == 0, err
    (draft,) = _independent_check([tmp_path / "drafts-1.csv"])
    assert draft[1] == "'=社保卡怎么补办", "formula-safe cells"


def test_bad_data_refused_with_row_numbers_and_nothing_written(db_url: str, tmp_path: Path, run: Run) -> None:
    rows = [
        _faq(1, question="失业金怎么领"),
        _faq(2, question="灵活就业怎么交社保"),
        _faq(3, question="失业金，怎么领", unit=UNITS[1]),  # same question, same unit as row 1
        _faq(4, answer="", status="draft"),
    ]
    _load(db_url, tmp_path, rows)
    code, _, err = run("kb", "export", str(tmp_path / "kb.xlsx"), "--format", "12345")
    assert code == 2 and "第3行（编号 f0003）「标题」：与第1行重复" in err, err
    assert "Traceback" not in err and list(tmp_path.glob("kb*")) == []
    code, _, err = run("kb", "export", str(tmp_path / "kb.csv"), "--format", "12345", "--status", "draft")
    assert code == 2 and "第1行（编号 f0004）「内容」：不能为空" in err, err
    code, _, err = run("kb", "export", str(tmp_path / "kb.jsonl"), "--format", "12345")
    assert code == 2 and "xlsx 或 csv" in err


def test_rules_name_every_problem_with_its_row() -> None:
    ok = dict(zip(HEADER, ["就业", "失业金怎么领", "答复", "人社局", "政策问答", "失业金"], strict=True))
    rows = [
        ok,
        {**ok, "标题": "标" * 129},
        {**ok, "标题": "失业金 怎么领!"},
        {**ok, "标题": "社保", "关键字": "社保"},
        {**ok, "标题": "医保", "关键字": "关" * 21},
        {**ok, "标题": "补贴", "发文单位": " "},
        {k: v for k, v in ok.items() if k != "关键字"},
    ]
    found = [(p.row, p.column) for p in check(rows)]
    assert found == [(2, "标题"), (3, "标题"), (4, "关键字"), (5, "关键字"), (6, "发文单位"), (7, "列")]
