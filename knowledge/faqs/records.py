"""The FAQ record types and their one conversion to a dict: the statuses and field order (with the
Chinese labels staff see), `FaqRecord` (one entry as read from the store, built from its row by
`to_record`), `VersionRecord` (one entry of the edit history), `SynonymSetRecord`, the results of an
import (`ImportReport` with its `ImportItem`s, `RowError`, `ImportFailed`), and `faq_dict`, the only place an FAQ becomes a
dict (exports, version snapshots, the command line, the sync API). Whether an entry is valid on a day
is decided by `knowledge.policies.validity.faq_validity`, the one FAQ validity rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from knowledge.errors import PolicybotError
from knowledge.policies.validity import faq_validity

if TYPE_CHECKING:
    from knowledge.models import Faq

Status = Literal["draft", "published", "retired"]
STATUSES: tuple[str, ...] = ("draft", "published", "retired")
STATUS_LABELS: dict[str, str] = {"draft": "草稿", "published": "已发布", "retired": "已下线"}

# Field order of records, exports and the Chinese headers staff see.
FIELDS: tuple[str, ...] = (
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
    "service_url",
)
EDITABLE: frozenset[str] = frozenset(FIELDS) - {"id"}
FIELD_LABELS: dict[str, str] = {
    "id": "编号",
    "question": "标准问题",
    "similar": "相似问法",
    "answer": "答案",
    "tags": "标签",
    "unit": "制文单位",
    "source_policy": "来源文件",
    "source_article": "条款",
    "valid_from": "生效日期",
    "valid_to": "失效日期",
    "status": "状态",
    "service_url": "办事链接",
}
# The store-maintained fields of a record, after the content fields.
META_FIELDS: tuple[str, ...] = ("seq", "updated_at", "updated_by")


# --- records ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaqRecord:
    id: str
    question: str
    similar: tuple[str, ...]
    answer: str
    tags: tuple[str, ...]
    unit: str | None
    source_policy: str | None
    source_article: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    status: str
    seq: int
    updated_at: dt.datetime
    updated_by: str
    service_url: str | None = None  # 办事链接

    def is_valid_on(self, d: dt.date) -> bool:
        """Whether `d` lies within the validity dates (both ends inclusive; status not considered)."""
        return faq_validity(None, self.valid_from, self.valid_to, d)[0]

    def as_dict(self) -> dict[str, Any]:
        """The content fields, JSON-ready (dates as ISO strings, tuples as lists): `faq_dict`."""
        return faq_dict(self)


@dataclass(frozen=True)
class VersionRecord:
    version_no: int
    seq: int
    action: str  # create / edit / publish / retire / import / restore
    at: dt.datetime
    by: str
    changes: dict[str, Any]  # field -> [old, new]
    note: str = ""
    snapshot: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SynonymSetRecord:
    id: int
    terms: tuple[str, ...]  # the first term is the canonical one
    seq: int
    updated_at: dt.datetime
    updated_by: str


@dataclass(frozen=True)
class RowError:
    """One problem found in an import file; `row` is the spreadsheet row (header = 1) or the jsonl
    line, None for the file as a whole; `column` is the header as written in the file."""

    row: int | None
    column: str | None
    message: str  # Chinese, for staff
    english: str = ""  # for the log

    def __str__(self) -> str:
        where = f"第{self.row}行" if self.row is not None else "文件"
        if self.column:
            where += f"「{self.column}」"
        text = f"{where}：{self.message}"
        return f"{text} / {self.english}" if self.english else text

    def log_text(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        if self.column:
            where += f" [{self.column}]"
        return f"{where}: {self.english or self.message}"


class ImportFailed(PolicybotError):
    """The file was rejected as a whole; nothing was written. `errors` lists every problem found."""

    SHOWN = 50

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors: list[RowError] = list(errors)
        shown = self.errors[: self.SHOWN]
        more = len(self.errors) - len(shown)
        zh = [f"导入失败，未写入任何数据，共 {len(self.errors)} 处错误："] + [str(e) for e in shown]
        en = [f"import rejected, nothing written, {len(self.errors)} error(s):"] + [
            e.log_text() for e in shown
        ]
        if more:
            zh.append(f"……另有 {more} 处错误未列出")
            en.append(f"... and {more} more")
        super().__init__("\n".join(zh), "\n".join(en))

    def __str__(self) -> str:
        return self.user_message


@dataclass(frozen=True)
class ImportItem:
    """One row of an import that changes the store: "create" or "update", with the fields it sets
    (`changes`: field -> [old, new]) and the drafting unit before and after (for permission checks)."""

    line: int
    action: str
    id: str | None
    question: str
    unit: str | None
    old_unit: str | None
    changes: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class ImportReport:
    fmt: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    dry_run: bool = False
    version: int | None = None  # the store version after the import (None for a dry run / no change)
    created_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    items: list[ImportItem] = field(default_factory=list)  # the rows that create or update, in file order
    # Existing phrasings that the import would answer differently (knowledge.faqs.conflicts): listed
    # by a dry run; a real import is refused with them unless confirmed.
    conflicts: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = "试导入（未写入）" if self.dry_run else "导入完成"
        verb = "将" if self.dry_run else ""
        text = (
            f"{head}：共 {self.rows} 行，{verb}新增 {self.created} 条，{verb}更新 {self.updated} 条，"
            f"无变化 {self.unchanged} 条，跳过 {self.skipped} 条"
        )
        if self.conflicts:
            text += f"；{len(self.conflicts)} 条已有问法将被错误答复"
        return text


# --- to and from a dict -------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def faq_dict(faq: FaqRecord | Mapping[str, Any], fields: Iterable[str] = FIELDS) -> dict[str, Any]:
    """The one FAQ-to-dict conversion: the named fields (default: the content fields, in FIELDS order)
    of a record or of a mapping of field values. Content fields are JSON-ready (dates as ISO strings,
    tuples as lists); META_FIELDS of a record are given as stored (`updated_at` a datetime)."""
    if isinstance(faq, Mapping):
        return {name: jsonable(faq.get(name)) for name in fields}
    return {name: jsonable(getattr(faq, name)) if name in FIELDS else getattr(faq, name) for name in fields}


def to_record(row: Faq) -> FaqRecord:
    return FaqRecord(
        id=row.id,
        question=row.question,
        similar=tuple(row.similar or ()),
        answer=row.answer or "",
        tags=tuple(row.tags or ()),
        unit=row.unit,
        source_policy=row.source_policy,
        source_article=row.source_article,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        status=row.status,
        seq=row.seq,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        service_url=row.service_url,
    )
