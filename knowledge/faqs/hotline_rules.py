"""The rules of a hotline knowledge-point file (知识点, GB/T 44191-2024 style, the shape the 12345 /
12333 hotline systems import), and the one check of every row against them before anything is
written: the six columns 类目 标题 内容 发文单位 材料性质 关键字; every column but 关键字 filled; 标题 at most
128 characters and unique in the whole export (also ignoring punctuation, spaces and case); 关键字 at
most 20 characters and not equal to the title; no cell over the spreadsheet limit; files of at most
1,000 rows. `validate` refuses with every problem and its row number (the row in the whole export,
counted from 1, with the FAQ id), nothing half-written. DB-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from knowledge.errors import InvalidInput
from knowledge.faqs.fields import question_key

COLUMNS: Final = ("类目", "标题", "内容", "发文单位", "材料性质", "关键字")
REQUIRED: Final = ("类目", "标题", "内容", "发文单位", "材料性质")
MAX_TITLE: Final = 128
MAX_KEYWORDS: Final = 20
MAX_SHORT: Final = 100  # 类目, 发文单位, 材料性质
MAX_CELL: Final = 32_767  # what one xlsx cell holds
MAX_ROWS_PER_FILE: Final = 1000
MAX_LISTED: Final = 50  # problems named in the error message


@dataclass(frozen=True)
class Problem:
    row: int  # 1-based, in the whole export
    column: str
    message: str
    ref: str = ""  # the FAQ id of the row

    def text(self) -> str:
        where = f"第{self.row}行" + (f"（编号 {self.ref}）" if self.ref else "")
        return f"{where}「{self.column}」：{self.message}"


class HotlineExportRefused(InvalidInput):
    """The export broke a rule; nothing was written. `problems` lists every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        shown = [p.text() for p in problems[:MAX_LISTED]]
        more = len(problems) - len(shown)
        message = "12345 知识点导出未写入，共 {} 处问题：\n{}".format(len(problems), "\n".join(shown))
        if more > 0:
            message += f"\n……另有 {more} 处"
        super().__init__(message, f"hotline export refused: {len(problems)} problems")
        self.problems = tuple(problems)


def check(rows: Sequence[Mapping[str, str]], refs: Sequence[str] = ()) -> list[Problem]:
    """Every broken rule of `rows` (in export order); `refs` names each row (FAQ ids)."""
    problems: list[Problem] = []
    titles: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        ref = refs[i - 1] if i - 1 < len(refs) else ""

        def bad(column: str, message: str, row_no: int = i, ref: str = ref) -> None:
            problems.append(Problem(row_no, column, message, ref))

        if tuple(row) != COLUMNS:
            bad("列", f"应为 {'、'.join(COLUMNS)}")
            continue
        values = {c: row[c] if isinstance(row[c], str) else "" for c in COLUMNS}
        for column in REQUIRED:
            if not values[column].strip():
                bad(column, "不能为空")
        for column in ("类目", "发文单位", "材料性质"):
            if len(values[column]) > MAX_SHORT:
                bad(column, f"超过{MAX_SHORT}个字符")
        if len(values["内容"]) > MAX_CELL:
            bad("内容", f"超过{MAX_CELL}个字符（表格单元格上限）")
        title, keywords = values["标题"], values["关键字"]
        if len(title) > MAX_TITLE:
            bad("标题", f"共{len(title)}个字符，超过{MAX_TITLE}个")
        key = question_key(title)
        if key and key in titles:
            bad("标题", f"与第{titles[key]}行重复，请合并或改写其中一条问答")
        elif key:
            titles[key] = i
        if len(keywords) > MAX_KEYWORDS:
            bad("关键字", f"共{len(keywords)}个字符，超过{MAX_KEYWORDS}个")
        if keywords.strip() and keywords.strip().casefold() == title.strip().casefold():
            bad("关键字", "不能与标题相同")
    return problems


def validate(rows: Sequence[Mapping[str, str]], refs: Sequence[str] = ()) -> None:
    """Refuse (HotlineExportRefused) unless every row keeps every rule."""
    problems = check(rows, refs)
    if problems:
        raise HotlineExportRefused(problems)


__all__ = [
    "COLUMNS",
    "MAX_KEYWORDS",
    "MAX_ROWS_PER_FILE",
    "MAX_TITLE",
    "HotlineExportRefused",
    "Problem",
    "check",
    "validate",
]
