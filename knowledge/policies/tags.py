"""The tag catalogue (标签目录): this module owns the `tag_catalogue` rows, their import from a csv or
xlsx file (columns 标签, 同义词, 分类, 说明; the file replaces the catalogue, all or nothing, every bad
row reported with its row number), the listing, and the one rule that checks tags given to an FAQ or a
policy: while the catalogue is empty every tag is accepted as written; once it exists a tag must be a
catalogue tag or one of its synonyms (就业 = 就业创业) and is stored as the canonical tag.
"""

from __future__ import annotations

import builtins
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import InvalidInput, NotFound
from knowledge.models import CatalogueTag, utcnow

MAX_TAG = 50
MAX_FILE_BYTES = 5 * 1024 * 1024
_HEADERS = {
    "name": ("标签", "标签名称", "名称", "tag", "name"),
    "synonyms": ("同义词", "别名", "近义词", "synonyms", "aliases"),
    "category": ("分类", "类别", "主题", "category", "group"),
    "description": ("说明", "描述", "备注", "description"),
}
_SPLIT = str.maketrans({c: "|" for c in ",，;；、|｜\n"})
# Tags the system itself sets to record where an FAQ came from (handoff.weekly: 未解答问题周报 and
# 周报<ISO week>; handoff.tickets.promotion: 政策留言转化 and 留言<ticket no>): not topics, never refused.
PROVENANCE = re.compile(r"^(?:未解答问题周报|周报\d{4}-W\d{2}|政策留言转化|留言[A-Za-z]{2}\d{8}-\d{3,6})$")


@dataclass(frozen=True)
class TagRecord:
    name: str
    synonyms: tuple[str, ...]
    category: str | None
    description: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "synonyms": list(self.synonyms),
            "category": self.category,
            "description": self.description,
        }


class UnknownTags(InvalidInput):
    """Tags outside the catalogue; `tags` names them as written."""

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        shown = "、".join(f"“{t}”" for t in self.tags)
        super().__init__(
            f"标签{shown}不在标签目录中，请使用目录中的标签（policybot tags list）。",
            f"tags not in the catalogue: {', '.join(self.tags)}",
        )


def _key(tag: str) -> str:
    return unicodedata.normalize("NFKC", tag).strip().casefold()


def _clean(value: object) -> str:
    return " ".join(unicodedata.normalize("NFC", str(value or "")).split())


class TagCatalogue:
    """The tag catalogue of one database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def list(self) -> list[TagRecord]:
        with self.sessions() as s:
            rows = s.execute(select(CatalogueTag).order_by(CatalogueTag.ordinal, CatalogueTag.name)).scalars()
            return [TagRecord(r.name, tuple(r.synonyms or ()), r.category, r.description or "") for r in rows]

    def lookup(self) -> dict[str, str]:
        """Normalised tag or synonym -> canonical tag; empty while there is no catalogue."""
        out: dict[str, str] = {}
        for t in self.list():
            out[_key(t.name)] = t.name
            for syn in t.synonyms:
                out.setdefault(_key(syn), t.name)
        return out

    def canonical(self, tags: Iterable[str], *, lookup: dict[str, str] | None = None) -> builtins.list[str]:
        """The tags as stored: canonical catalogue tags (deduplicated, in the given order), or the tags
        unchanged while the catalogue is empty. Raises UnknownTags for tags outside it."""
        table = self.lookup() if lookup is None else lookup
        given = [t for t in (_clean(x) for x in tags) if t]
        if not table:
            return list(dict.fromkeys(given))
        unknown = [t for t in given if _key(t) not in table and not PROVENANCE.match(t)]
        if unknown:
            raise UnknownTags(unknown)
        return list(dict.fromkeys(table.get(_key(t), t) for t in given))

    def import_file(self, path: str | Path, *, by: str = "import") -> int:
        """Replace the catalogue with the rows of a csv (UTF-8 / GB18030) or xlsx file; returns the
        number of tags. Any bad row rejects the file, nothing is written."""
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"找不到文件“{p.name}”。", f"tag file {p} not found")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput("标签目录文件过大（上限 5 MB）。", f"tag file {p.name} too large")
        suffix = p.suffix.lower()
        if suffix == ".csv":
            rows = _csv_rows(p.read_bytes())
        elif suffix in (".xlsx", ".xlsm"):
            rows = _xlsx_rows(p)
        else:
            raise InvalidInput("标签目录只支持 .csv 或 .xlsx 文件。", f"tag file suffix {suffix!r}")
        records = _parse(rows)
        with transaction(self.sessions) as s:
            s.execute(delete(CatalogueTag))
            now = utcnow()
            for i, r in enumerate(records):
                s.add(
                    CatalogueTag(
                        name=r.name,
                        synonyms=list(r.synonyms),
                        category=r.category,
                        description=r.description,
                        ordinal=i,
                        updated_at=now,
                        updated_by=by[:100],
                    )
                )
        return len(records)


def _csv_rows(data: bytes) -> list[list[str]]:
    from knowledge.text import decode_text_bytes

    text = decode_text_bytes(data)
    if text is None:
        raise InvalidInput("无法识别标签目录文件的编码，请另存为 UTF-8 的 csv。", "tag file encoding unknown")
    return [list(r) for r in csv.reader(io.StringIO(text.lstrip("\ufeff")))]


def _xlsx_rows(p: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged file
        raise InvalidInput("无法读取该 xlsx 文件，请确认文件未损坏。", f"unreadable xlsx: {exc}") from exc
    try:
        ws = wb.worksheets[0]
        return [["" if c is None else str(c) for c in row] for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _parse(rows: list[list[str]]) -> list[TagRecord]:
    if not rows:
        raise InvalidInput("标签目录文件为空。", "tag file is empty")
    header = [_key(h).replace(" ", "") for h in rows[0]]
    cols: dict[str, int] = {}
    for field, names in _HEADERS.items():
        for i, h in enumerate(header):
            if h in {_key(n) for n in names}:
                cols.setdefault(field, i)
    if "name" not in cols:
        raise InvalidInput("第1行缺少“标签”列。", "tag file has no 标签 column")
    problems: list[str] = []
    out: list[TagRecord] = []
    seen: dict[str, tuple[int, str]] = {}  # normalised name or synonym -> (row, canonical tag)

    def cell(row: list[str], field: str) -> str:
        i = cols.get(field)
        return _clean(row[i]) if i is not None and i < len(row) else ""

    for line, row in enumerate(rows[1:], start=2):
        name = cell(row, "name")
        if not name:
            if any(_clean(c) for c in row):
                problems.append(f"第{line}行：标签不能为空")
            continue
        synonyms = [s for s in (_clean(x) for x in cell(row, "synonyms").translate(_SPLIT).split("|")) if s]
        for term in (name, *synonyms):
            if len(term) > MAX_TAG:
                problems.append(f"第{line}行：“{term[:20]}”过长（上限 {MAX_TAG} 字）")
            prior = seen.get(_key(term))
            if prior is not None and prior[1] != name:
                problems.append(f"第{line}行：“{term}”已在第{prior[0]}行用于标签“{prior[1]}”")
            elif prior is not None and term == name:
                problems.append(f"第{line}行：标签“{name}”与第{prior[0]}行重复")
            seen.setdefault(_key(term), (line, name))
        synonyms = [s for s in dict.fromkeys(synonyms) if _key(s) != _key(name)]
        out.append(TagRecord(name, tuple(synonyms), cell(row, "category") or None, cell(row, "description")))
    if problems:
        raise InvalidInput(
            "标签目录导入失败，未写入任何数据：\n" + "\n".join(problems[:50]),
            f"tag catalogue rejected: {len(problems)} problem(s)",
        )
    if not out:
        raise InvalidInput("标签目录文件中没有标签。", "tag file has no tags")
    return out
