"""The FAQ store as hotline knowledge points (`policybot kb export FILE --format 12345`): each FAQ
becomes one row of 类目 (its first tag, else its drafting unit, else the issuer of its source policy),
标题 (the standard question), 内容 (the answer, with the citation 《标题》（文号）条款 appended unless the
answer already names the document), 发文单位 (the drafting unit, else the source policy's issuer),
材料性质 (政策问答) and 关键字 (the matcher's key terms of the question, `knowledge.text`, then its tags,
at most 20 characters). Titles are made to fit deterministically, in the store's id order: one over
128 characters is cut to 127 and ends with …; a title already taken (ignoring punctuation, spaces
and case) by another unit's entry gets its own drafting unit appended (（青浦区医疗保障局）); the same
question twice from one unit, or what still collides, is left for the rules (`hotline_rules`) to
refuse. Every row is checked before anything is written; the files are
FILE-1.xlsx, FILE-2.xlsx … (or .csv, by FILE's extension) of at most 1,000 rows, each written to a
temporary name and all moved into place together. Every cell is formula-safe.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from knowledge.errors import InvalidInput
from knowledge.faqs.cells import formula_safe
from knowledge.faqs.fields import clean_block, clean_line, question_key
from knowledge.faqs.hotline_rules import COLUMNS, MAX_KEYWORDS, MAX_ROWS_PER_FILE, MAX_TITLE, validate
from knowledge.faqs.records import FaqRecord
from knowledge.text import TextProcessor

NATURE: Final = "政策问答"  # 材料性质 of every row
KEYWORD_SEPARATOR: Final = "，"
ELLIPSIS: Final = "…"
# Words of a question that say it is a question, not what it is about.
QUESTION_WORDS: Final = frozenset(
    "什么 怎么 怎样 怎么样 如何 哪些 哪里 哪儿 哪个 多久 多少 多长时间 几天 是否 可以 能否 能不能 "
    "需要 要求 有没有 是不是 为什么 怎么办 什么样 吗 呢 的 了".split()
)

PolicyLookup = Callable[[str], Any]  # source_policy -> PolicyRecord (title, doc_no, issuer, citation) | None


@dataclass(frozen=True)
class KnowledgePoint:
    faq_id: str
    category: str
    title: str
    content: str
    issuer: str
    nature: str
    keywords: str

    def row(self) -> dict[str, str]:
        values = (self.category, self.title, self.content, self.issuer, self.nature, self.keywords)
        return dict(zip(COLUMNS, values, strict=True))


def _cell(text: str) -> str:
    return str(formula_safe(text))


def _fit(base: str, suffix: str = "") -> str:
    """`base` + `suffix` in at most MAX_TITLE characters (the base cut, ending with …)."""
    if len(base) + len(suffix) <= MAX_TITLE:
        return base + suffix
    return base[: max(0, MAX_TITLE - len(suffix) - len(ELLIPSIS))] + ELLIPSIS + suffix


def _keywords(question: str, tags: Sequence[str], title: str, text: TextProcessor) -> str:
    """The key terms of the question (then the tags) that fit in MAX_KEYWORDS characters."""
    terms: list[str] = []
    for word in [*text.tokens(question), *(clean_line(t) for t in tags)]:
        if len(word) >= 2 and word not in QUESTION_WORDS and not word.isdigit() and word not in terms:
            terms.append(word)
    out = ""
    for word in terms:
        candidate = f"{out}{KEYWORD_SEPARATOR}{word}" if out else word
        if len(candidate) <= MAX_KEYWORDS and candidate.casefold() != title.casefold():
            out = candidate
    return _cell(out)


def _point(r: FaqRecord, policy: Any, text: TextProcessor) -> KnowledgePoint:
    issuer = clean_line(r.unit or (policy.issuer if policy is not None else "") or "")
    category = clean_line(r.tags[0] if r.tags else r.unit or issuer)
    content = clean_block(r.answer)
    if policy is not None:
        if f"《{policy.title}》" not in content:
            content += f"\n（来源：{policy.citation(r.source_article)}）"
    elif r.source_policy:
        content += f"\n（来源：{r.source_policy}{r.source_article or ''}）"
    title = _fit(_cell(clean_line(r.question)))
    return KnowledgePoint(
        faq_id=r.id,
        category=_cell(category),
        title=title,
        content=_cell(content) if r.answer.strip() else "",
        issuer=_cell(issuer),
        nature=NATURE,
        keywords=_keywords(r.question, r.tags, title, text),
    )


def knowledge_points(
    records: Iterable[FaqRecord], *, policy: PolicyLookup, text: TextProcessor
) -> list[KnowledgePoint]:
    """The rows of `records` (in their order), titles de-duplicated as the module docstring says."""
    points: list[KnowledgePoint] = []
    taken: dict[str, str] = {}  # title key -> the issuer of the row that has it
    for r in records:
        p = _point(r, policy(r.source_policy) if r.source_policy else None, text)
        first = taken.get(question_key(p.title))
        if first is not None and p.issuer and p.issuer != first:  # another unit's answer to it
            candidate = _fit(_cell(clean_line(r.question)), f"（{p.issuer}）")
            if question_key(candidate) not in taken:
                p = KnowledgePoint(p.faq_id, p.category, candidate, p.content, p.issuer, p.nature, p.keywords)
        taken.setdefault(question_key(p.title), p.issuer)
        points.append(p)
    return points


def matcher_text(records: Sequence[FaqRecord], synonyms: Sequence[Sequence[str]]) -> TextProcessor:
    """A text processor as the matcher's: the store's synonym sets and its tags as words."""
    return TextProcessor(synonyms=synonyms, words=[t for r in records for t in r.tags if 2 <= len(t) <= 12])


def part_paths(path: Path, count: int) -> list[Path]:
    """FILE-1.xlsx, FILE-2.xlsx, … beside FILE."""
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def export_hotline(
    path: str | os.PathLike[str], records: Sequence[FaqRecord], *, policy: PolicyLookup, text: TextProcessor
) -> list[Path]:
    """Check, then write the knowledge points of `records`; returns the files written."""
    p = Path(path)
    kind = p.suffix.lower().lstrip(".")
    if kind not in ("xlsx", "csv"):
        raise InvalidInput(
            f"12345 知识点只能导出为 xlsx 或 csv（按文件扩展名）：{p.name}", f"hotline export to {p.suffix!r}"
        )
    if not records:
        raise InvalidInput(
            "没有可导出的问答（12345 知识点默认只导出已发布且当前有效的问答）", "nothing to export"
        )
    points = knowledge_points(records, policy=policy, text=text)
    validate([pt.row() for pt in points], [pt.faq_id for pt in points])
    chunks = [points[i : i + MAX_ROWS_PER_FILE] for i in range(0, len(points), MAX_ROWS_PER_FILE)]
    targets = part_paths(p, len(chunks))
    p.parent.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        for chunk in chunks:
            fd, name = tempfile.mkstemp(prefix=".export-", suffix=p.suffix, dir=p.parent)
            os.close(fd)
            temps.append(Path(name))
            (_write_xlsx if kind == "xlsx" else _write_csv)(temps[-1], chunk)
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return targets


def _write_xlsx(path: Path, points: Sequence[KnowledgePoint]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("知识点")
    for letter, width in zip("ABCDEF", (20, 40, 80, 28, 12, 24), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for name in COLUMNS:
        c = WriteOnlyCell(ws, value=name)
        c.font = bold
        header.append(c)
    ws.append(header)
    for pt in points:
        row = []
        for column, value in pt.row().items():
            c = WriteOnlyCell(ws, value=value)
            if column in ("标题", "内容"):
                c.alignment = wrap
            row.append(c)
        ws.append(row)
    wb.save(path)


def _write_csv(path: Path, points: Sequence[KnowledgePoint]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(COLUMNS)
        for pt in points:
            w.writerow(pt.row().values())


__all__ = [
    "NATURE",
    "KnowledgePoint",
    "export_hotline",
    "knowledge_points",
    "matcher_text",
    "part_paths",
]
