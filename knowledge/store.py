"""The FAQ store: the one knowledge base every consultation window shares. It owns the FAQ entries
(standard question, similar phrasings, answer, policy tags, drafting unit, source policy and article,
validity dates, status draft / published / retired), their full edit history (who, when, which fields
changed from what to what, plus a snapshot), the synonym sets, and import/export of the whole store as
xlsx, csv or jsonl. Every change bumps `kb_state.version` and stamps the changed rows with it, so other
processes notice changes by polling `version()` and fetch them with `changes_since(seq)`. Imports are
all-or-nothing: every row is parsed and validated first, and every bad row is reported at once.
"""

from __future__ import annotations

import builtins
import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import Conflict, InvalidInput, NotFound, PolicybotError
from knowledge.models import Faq, FaqVersion, KbState, SynonymSet, bump_version, current_version, utcnow
from knowledge.text import decode_text_bytes

if TYPE_CHECKING:
    from knowledge.matcher import IndexEntry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FIELDS",
    "FIELD_LABELS",
    "STATUSES",
    "STATUS_LABELS",
    "FaqRecord",
    "FaqStore",
    "ImportFailed",
    "ImportReport",
    "RowError",
    "SynonymSetRecord",
    "VersionRecord",
    "parse_date",
    "question_key",
]

Status = Literal["draft", "published", "retired"]
STATUSES: tuple[str, ...] = ("draft", "published", "retired")
STATUS_LABELS: dict[str, str] = {"draft": "草稿", "published": "已发布", "retired": "已下线"}
_STATUS_ALIASES: dict[str, str] = {
    "draft": "draft",
    "草稿": "draft",
    "待发布": "draft",
    "published": "published",
    "已发布": "published",
    "发布": "published",
    "上线": "published",
    "已上线": "published",
    "retired": "retired",
    "已下线": "retired",
    "下线": "retired",
    "已停用": "retired",
}

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
}
_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("编号", "问答编号", "id", "faqid"),
    "question": ("标准问题", "标准问法", "问题", "question", "standardquestion"),
    "similar": ("相似问法", "相似问题", "相似问", "扩展问法", "similar", "similarquestions"),
    "answer": ("答案", "标准答案", "回答", "答复", "answer"),
    "tags": ("标签", "政策标签", "tags", "tag"),
    "unit": ("制文单位", "发文单位", "起草单位", "unit", "draftingunit"),
    "source_policy": ("来源文件", "来源政策", "政策文件", "文号", "政策文号", "sourcepolicy", "policy"),
    "source_article": ("条款", "来源条款", "sourcearticle", "article"),
    "valid_from": ("生效日期", "生效时间", "validfrom"),
    "valid_to": ("失效日期", "失效时间", "validto"),
    "status": ("状态", "status"),
}

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_QUESTION = 500
MAX_ANSWER = 20_000
MAX_SIMILAR = 200
MAX_TAGS = 30
MAX_TAG_LEN = 50
MAX_SYNONYM_TERMS = 100
_LIMITS = {"unit": 200, "source_policy": 200, "source_article": 100}
_ID_RE = re.compile(r"^[\w.\-]{1,64}$")
_ID_PREFIX = "faq-"
_ID_COUNTER_KEY = "faq_id_counter"
_CHUNK = 500

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SIMILAR_SPLIT = re.compile(r"[\n|｜]")
_TAG_SPLIT = re.compile(r"[\n,，;；|｜、]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# Characters that never occur in a text file: their presence means the bytes were decoded wrongly.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_NON_WORD = re.compile(r"[\W_]+")
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


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

    def is_valid_on(self, d: dt.date) -> bool:
        """Whether `d` lies within the validity dates (both ends inclusive; status not considered)."""
        return (self.valid_from is None or self.valid_from <= d) and (
            self.valid_to is None or d <= self.valid_to
        )

    def as_dict(self) -> dict[str, Any]:
        """The content fields, JSON-ready (dates as ISO strings, tuples as lists)."""
        return {name: _jsonable(getattr(self, name)) for name in FIELDS}


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

    def summary(self) -> str:
        head = "试导入（未写入）" if self.dry_run else "导入完成"
        verb = "将" if self.dry_run else ""
        return (
            f"{head}：共 {self.rows} 行，{verb}新增 {self.created} 条，{verb}更新 {self.updated} 条，"
            f"无变化 {self.unchanged} 条，跳过 {self.skipped} 条"
        )


class _NothingToWrite(Exception):
    pass


class _FieldError(Exception):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


# --- text cleaning and parsing ----------------------------------------------------------------------
def clean_line(value: object) -> str:
    """NFC, no control or zero-width characters, whitespace runs collapsed to one space, trimmed."""
    if value is None:
        return ""
    s = unicodedata.normalize("NFC", str(value)).translate(_ZERO_WIDTH)
    s = _CONTROL.sub(" ", s)
    return " ".join(s.split())


def clean_block(value: object) -> str:
    """Like clean_line but keeps line breaks (answers): CRLF -> LF, trailing spaces and runs of blank
    lines removed."""
    if value is None:
        return ""
    s = unicodedata.normalize("NFC", str(value)).translate(_ZERO_WIDTH)
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    s = s.replace("\t", "    ")
    s = _CONTROL.sub("", s)
    s = "\n".join(line.rstrip() for line in s.split("\n"))
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.strip()


def question_key(text: str) -> str:
    """Normalised form of a question for duplicate detection: NFKC, case-folded, letters and digits
    only (punctuation and spaces removed)."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())[:MAX_QUESTION]


def _search_norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def parse_date(value: object, *, excel_serial: bool = False) -> dt.date | None:
    """Parse YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYY年M月D日, YYYYMMDD (an optional time is ignored),
    date/datetime objects and, with `excel_serial`, Excel day numbers. Empty -> None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if excel_serial and 1 <= value < 2_958_466:
            from openpyxl.utils.datetime import from_excel

            converted = from_excel(value)
            if isinstance(converted, dt.datetime):
                return converted.date()
            if isinstance(converted, dt.date):
                return converted
        raise _FieldError(
            f"日期格式无法识别：{value!r}（应为 YYYY-MM-DD）",
            f"unrecognised date {value!r} (expected YYYY-MM-DD)",
        )
    s = unicodedata.normalize("NFKC", str(value)).strip()
    if not s:
        return None
    m = _DATE_RE.match(s) or _COMPACT_DATE_RE.match(s)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise _FieldError(f"日期不存在：{s}", f"no such date: {s}") from None
    raise _FieldError(
        f"日期格式无法识别：{s}（应为 YYYY-MM-DD）", f"unrecognised date {s!r} (expected YYYY-MM-DD)"
    )


def parse_status(value: object) -> str:
    s = clean_line(value).casefold()
    if not s:
        return "published"
    status = _STATUS_ALIASES.get(s)
    if status is None:
        raise _FieldError(
            f"状态无效：{clean_line(value)}（应为 草稿/已发布/已下线）",
            f"invalid status {clean_line(value)!r} (expected draft/published/retired)",
        )
    return status


def _split(value: object, pattern: re.Pattern[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return pattern.split(value)
    if isinstance(value, list | tuple):
        return ["" if v is None else str(v) for v in value]
    return [str(value)]


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    s = clean_line(value)
    if not s:
        return None
    if not _ID_RE.match(s):
        raise _FieldError(
            f"编号无效：{s[:80]}（只能包含字母、数字、汉字、- _ .，最长 64 个字符）",
            f"invalid id {s[:80]!r} (letters, digits, - _ . only, at most 64 characters)",
        )
    return s


def _clean_field(name: str, value: object, *, excel_serial: bool = False) -> Any:
    """Clean one field value; raises _FieldError with a bilingual message."""
    if name == "id":
        return _clean_id(value)
    if name == "question":
        q = clean_line("" if value is None else value)
        if len(q) > MAX_QUESTION:
            raise _FieldError(
                f"标准问题过长（{len(q)} 字，上限 {MAX_QUESTION}）", f"question longer than {MAX_QUESTION}"
            )
        return q
    if name == "answer":
        a = clean_block("" if value is None else value)
        if len(a) > MAX_ANSWER:
            raise _FieldError(
                f"答案过长（{len(a)} 字，上限 {MAX_ANSWER}）", f"answer longer than {MAX_ANSWER}"
            )
        return a
    if name == "similar":
        out: list[str] = []
        for part in _split(value, _SIMILAR_SPLIT):
            if "|" in part or "｜" in part:
                raise _FieldError(
                    "相似问法中不能包含 | 或 ｜（它们是分隔符）", "similar phrasing contains a separator |"
                )
            p = clean_line(part)
            if len(p) > MAX_QUESTION:
                raise _FieldError(
                    f"相似问法过长（上限 {MAX_QUESTION} 字）", f"similar phrasing longer than {MAX_QUESTION}"
                )
            if p:
                out.append(p)
        if len(out) > MAX_SIMILAR:
            raise _FieldError(
                f"相似问法过多（上限 {MAX_SIMILAR} 条）", f"more than {MAX_SIMILAR} similar phrasings"
            )
        return out
    if name == "tags":
        tags: list[str] = []
        seen: set[str] = set()
        for part in _split(value, _TAG_SPLIT):
            if _TAG_SPLIT.search(part):
                raise _FieldError(
                    f"标签中不能包含分隔符：{part[:50]}", f"tag contains a separator: {part[:50]!r}"
                )
            t = clean_line(part)
            if len(t) > MAX_TAG_LEN:
                raise _FieldError(
                    f"标签过长（上限 {MAX_TAG_LEN} 字）：{t[:50]}", f"tag longer than {MAX_TAG_LEN}"
                )
            if t and t.casefold() not in seen:
                seen.add(t.casefold())
                tags.append(t)
        if len(tags) > MAX_TAGS:
            raise _FieldError(f"标签过多（上限 {MAX_TAGS} 个）", f"more than {MAX_TAGS} tags")
        return tags
    if name in _LIMITS:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        s = clean_line("" if value is None else value)
        if len(s) > _LIMITS[name]:
            raise _FieldError(
                f"{FIELD_LABELS[name]}过长（上限 {_LIMITS[name]} 字）", f"{name} longer than {_LIMITS[name]}"
            )
        return s or None
    if name in ("valid_from", "valid_to"):
        return parse_date(value, excel_serial=excel_serial)
    if name == "status":
        return parse_status(value)
    raise _FieldError(f"未知字段：{name}", f"unknown field {name!r}")


def _finalise(values: dict[str, Any]) -> None:
    """Drop similar phrasings that repeat the question or each other (compared normalised)."""
    seen = {question_key(values.get("question") or "")}
    kept: list[str] = []
    for s in values.get("similar") or []:
        k = question_key(s) or s
        if k not in seen:
            seen.add(k)
            kept.append(s)
    values["similar"] = kept


def _check_record(values: dict[str, Any], *, allow_empty_answer: bool = False) -> list[tuple[str, str, str]]:
    """Whole-record rules; returns (field, Chinese, English) problems."""
    problems: list[tuple[str, str, str]] = []
    if not values.get("question"):
        problems.append(("question", "标准问题不能为空", "question is empty"))
    if values.get("status") not in STATUSES:
        problems.append(("status", "状态无效（应为 草稿/已发布/已下线）", "invalid status"))
    if values.get("status") == "published" and not values.get("answer") and not allow_empty_answer:
        problems.append(("answer", "已发布的问答必须填写答案", "answer is required for a published entry"))
    vf, vt = values.get("valid_from"), values.get("valid_to")
    if vf is not None and vt is not None and vt < vf:
        problems.append(
            ("valid_to", f"失效日期 {vt} 早于生效日期 {vf}", f"valid_to {vt} is before valid_from {vf}")
        )
    return problems


def _defaults() -> dict[str, Any]:
    return {
        "id": None,
        "question": "",
        "similar": [],
        "answer": "",
        "tags": [],
        "unit": None,
        "source_policy": None,
        "source_article": None,
        "valid_from": None,
        "valid_to": None,
        "status": "published",
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _row_values(row: Any) -> dict[str, Any]:
    """Content fields of a Faq entity or a selected row with the same attribute names."""
    return {
        "id": row.id,
        "question": row.question,
        "similar": list(row.similar or []),
        "answer": row.answer or "",
        "tags": list(row.tags or []),
        "unit": row.unit,
        "source_policy": row.source_policy,
        "source_article": row.source_article,
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
        "status": row.status,
    }


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        name: [_jsonable(old.get(name)), _jsonable(new.get(name))]
        for name in FIELDS
        if name != "id" and old.get(name) != new.get(name)
    }


def _derived(values: dict[str, Any]) -> dict[str, Any]:
    """The store-maintained columns computed from the content."""
    parts = [
        values["id"],
        values["question"],
        *values["similar"],
        values["answer"],
        *values["tags"],
        values.get("unit") or "",
        values.get("source_policy") or "",
    ]
    return {
        "question_key": question_key(values["question"]),
        "search_text": _search_norm("\n".join(parts)),
        "tags_text": "|" + "|".join(_search_norm(t) for t in values["tags"]) + "|" if values["tags"] else "",
    }


def _record(row: Faq) -> FaqRecord:
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
    )


def _clean_by(by: str) -> str:
    s = clean_line(by)
    if not s:
        raise InvalidInput("缺少操作人", "the acting user ('by') is required")
    return s[:100]


def _invalid(problems: Sequence[tuple[str, str, str]]) -> InvalidInput:
    zh = "；".join(f"{FIELD_LABELS.get(f, f)}：{m}" for f, m, _ in problems)
    en = "; ".join(f"{f}: {e}" for f, _, e in problems)
    return InvalidInput(zh, en)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _bulk_insert(s: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows with the driver's executemany (Core, no ORM bookkeeping): the fastest path
    measured on both backends (psycopg pipelines the statements)."""
    if rows:
        s.connection().execute(table.insert(), list(rows))


def _bulk_update_faq(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE faq rows by id with one executemany (every dict has the same keys, including "id")."""
    if not rows:
        return
    table = cast(Table, Faq.__table__)
    names = [k for k in rows[0] if k != "id"]
    stmt = (
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(f"_{name}") for name in names})
    )
    s.connection().execute(stmt, [{f"_{k}": v for k, v in row.items()} for row in rows])


# --- the store ----------------------------------------------------------------------------------------
class FaqStore:
    """FAQ CRUD with versions, validity, synonym sets and file import/export over one sessionmaker."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # --- reading ----------------------------------------------------------------------------------
    def get(self, faq_id: str) -> FaqRecord | None:
        with self._sessions() as s:
            row = s.get(Faq, str(faq_id))
            return _record(row) if row is not None else None

    def require(self, faq_id: str) -> FaqRecord:
        rec = self.get(faq_id)
        if rec is None:
            raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
        return rec

    def list(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        unit: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        order: Literal["id", "recent"] = "id",
    ) -> builtins.list[FaqRecord]:
        """Entries matching every given filter: status, an exact tag, an exact drafting unit, and text
        (each whitespace-separated term must occur in the id, question, phrasings, answer, tags, unit
        or source, case-insensitively). `order="recent"` puts the latest changed first."""
        query = self._filtered(select(Faq), status=status, tag=tag, unit=unit, text=text)
        if order == "recent":
            query = query.order_by(Faq.seq.desc(), Faq.id)
        else:
            query = query.order_by(Faq.id)
        query = query.limit(max(0, int(limit))).offset(max(0, int(offset)))
        with self._sessions() as s:
            return [_record(r) for r in s.scalars(query)]

    def count(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        unit: str | None = None,
        text: str | None = None,
    ) -> int:
        query = self._filtered(
            select(func.count()).select_from(Faq), status=status, tag=tag, unit=unit, text=text
        )
        with self._sessions() as s:
            return int(s.execute(query).scalar_one())

    def _filtered(
        self, query: Select[Any], *, status: str | None, tag: str | None, unit: str | None, text: str | None
    ) -> Select[Any]:
        conds: builtins.list[ColumnElement[bool]] = []
        if status is not None:
            try:
                conds.append(Faq.status == parse_status(status))
            except _FieldError as e:
                raise InvalidInput(e.zh, e.en) from None
        if tag:
            conds.append(Faq.tags_text.contains(f"|{_search_norm(clean_line(tag))}|", autoescape=True))
        if unit:
            conds.append(Faq.unit == clean_line(unit))
        if text:
            for term in _search_norm(clean_line(text)).split():
                conds.append(Faq.search_text.contains(term, autoescape=True))
        return query.where(and_(*conds)) if conds else query

    def history(self, faq_id: str) -> builtins.list[VersionRecord]:
        """Every version of one entry, oldest first."""
        with self._sessions() as s:
            rows = s.scalars(
                select(FaqVersion).where(FaqVersion.faq_id == str(faq_id)).order_by(FaqVersion.version_no)
            ).all()
            if not rows and s.get(Faq, str(faq_id)) is None:
                raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
            return [
                VersionRecord(
                    v.version_no,
                    v.seq,
                    v.action,
                    v.at,
                    v.by,
                    dict(v.changes or {}),
                    v.note or "",
                    dict(v.snapshot or {}),
                )
                for v in rows
            ]

    def version(self) -> int:
        """The store's version stamp; it changes with every change to FAQs or synonyms."""
        with self._sessions() as s:
            return current_version(s)

    def changes_since(self, seq: int, limit: int = 1000) -> builtins.list[FaqRecord]:
        """Entries changed after stamp `seq` (retired ones included), oldest change first. Continue from
        the largest `seq` returned: a page never splits the rows of one change (an import stamps many
        rows with one value), so it may hold more than `limit` rows when one change is that large."""
        limit = max(1, int(limit))
        with self._sessions() as s:
            rows = s.scalars(
                select(Faq).where(Faq.seq > seq).order_by(Faq.seq, Faq.id).limit(limit + 1)
            ).all()
            if len(rows) <= limit:
                return [_record(r) for r in rows]
            last = rows[limit].seq
            kept = [r for r in rows[:limit] if r.seq != last]
            if kept:
                return [_record(r) for r in kept]
            whole = s.scalars(select(Faq).where(Faq.seq == last).order_by(Faq.id)).all()
            return [_record(r) for r in whole]

    def index_entries(
        self, *, status: str | None = "published", valid_on: dt.date | None = None
    ) -> builtins.list[IndexEntry]:
        """What the matcher indexes: id, question, similar phrasings and tags of the entries with the
        given status (None: all), optionally only those valid on a date."""
        from knowledge.matcher import IndexEntry

        query = select(Faq.id, Faq.question, Faq.similar, Faq.tags, Faq.valid_from, Faq.valid_to).order_by(
            Faq.id
        )
        if status is not None:
            try:
                query = query.where(Faq.status == parse_status(status))
            except _FieldError as e:
                raise InvalidInput(e.zh, e.en) from None
        out: builtins.list[IndexEntry] = []
        with self._sessions() as s:
            for fid, question, similar, tags, vf, vt in s.execute(query):
                if valid_on is not None and ((vf and valid_on < vf) or (vt and valid_on > vt)):
                    continue
                out.append(IndexEntry(fid, question, tuple(similar or ()), tuple(tags or ())))
        return out

    # --- writing ----------------------------------------------------------------------------------
    def add(
        self,
        *,
        by: str,
        question: str,
        answer: str = "",
        similar: Iterable[str] | str = (),
        tags: Iterable[str] | str = (),
        unit: str | None = None,
        source_policy: str | None = None,
        source_article: str | None = None,
        valid_from: dt.date | str | None = None,
        valid_to: dt.date | str | None = None,
        status: str = "published",
        id: str | None = None,
        allow_empty_answer: bool = False,
    ) -> FaqRecord:
        """Create an entry (id generated as faq-000123 when not given). Conflict if the id exists."""
        who = _clean_by(by)
        raw: dict[str, Any] = {
            "id": id,
            "question": question,
            "answer": answer,
            "similar": list(similar) if not isinstance(similar, str) else similar,
            "tags": list(tags) if not isinstance(tags, str) else tags,
            "unit": unit,
            "source_policy": source_policy,
            "source_article": source_article,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "status": status,
        }
        values = _defaults()
        problems: builtins.list[tuple[str, str, str]] = []
        for name, value in raw.items():
            try:
                values[name] = _clean_field(name, value)
            except _FieldError as e:
                problems.append((name, e.zh, e.en))
        _finalise(values)
        problems += _check_record(values, allow_empty_answer=allow_empty_answer)
        if problems:
            raise _invalid(problems)
        for _attempt in range(3):
            try:
                with self._sessions() as s, s.begin():
                    seq = bump_version(s)
                    new_id: str
                    if values["id"] is None:
                        new_id = self._next_ids(s, 1)[0]
                    else:
                        new_id = values["id"]
                        if s.get(Faq, new_id) is not None:
                            raise Conflict(f"编号 {new_id} 已存在", f"FAQ id {new_id!r} already exists")
                    row_values = dict(values, id=new_id)
                    now = utcnow()
                    s.execute(insert(Faq), [self._insert_values(row_values, seq, who, now)])
                    s.execute(
                        insert(FaqVersion),
                        [
                            {
                                "faq_id": new_id,
                                "version_no": 1,
                                "seq": seq,
                                "action": "create",
                                "at": now,
                                "by": who,
                                "changes": _diff({}, row_values),
                                "snapshot": self._snapshot(row_values),
                                "note": "",
                            }
                        ],
                    )
                    row = s.get(Faq, new_id)
                    assert row is not None
                    return _record(row)
            except IntegrityError:
                if values["id"] is not None:
                    raise Conflict(
                        f"编号 {values['id']} 已存在", f"FAQ id {values['id']!r} already exists"
                    ) from None
                # A concurrent writer took the generated id: try again with the next one.
        raise Conflict("编号分配冲突，请重试", "could not allocate an FAQ id after 3 attempts")

    def edit(self, faq_id: str, *, by: str, expected_seq: int | None = None, **changes: Any) -> FaqRecord:
        """Change fields of an entry. With `expected_seq` (the `seq` the editor saw), a concurrent change
        raises Conflict instead of being overwritten. An edit that changes nothing writes nothing."""
        return self._change(faq_id, by=by, expected_seq=expected_seq, changes=changes, action="edit")

    def publish(self, faq_id: str, *, by: str, expected_seq: int | None = None, note: str = "") -> FaqRecord:
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes={"status": "published"},
            action="publish",
            note=note,
        )

    def retire(self, faq_id: str, *, by: str, reason: str = "", expected_seq: int | None = None) -> FaqRecord:
        """Take an entry offline (kept, with its history; `changes_since` reports it)."""
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes={"status": "retired"},
            action="retire",
            note=reason,
        )

    def restore(self, faq_id: str, version_no: int, *, by: str, expected_seq: int | None = None) -> FaqRecord:
        """Bring the content of an earlier version back (as a new version)."""
        versions = {v.version_no: v for v in self.history(faq_id)}
        old = versions.get(int(version_no))
        if old is None:
            raise NotFound(
                f"问答 {faq_id} 没有第 {version_no} 版", f"FAQ {faq_id!r} has no version {version_no}"
            )
        content = {k: v for k, v in old.snapshot.items() if k in EDITABLE}
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes=content,
            action="restore",
            note=f"恢复到第 {version_no} 版",
        )

    def _change(
        self,
        faq_id: str,
        *,
        by: str,
        expected_seq: int | None,
        changes: dict[str, Any],
        action: str,
        note: str = "",
    ) -> FaqRecord:
        who = _clean_by(by)
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise InvalidInput(f"不能修改的字段：{'、'.join(unknown)}", f"fields not editable: {unknown}")
        cleaned: dict[str, Any] = {}
        problems: builtins.list[tuple[str, str, str]] = []
        for name, value in changes.items():
            try:
                cleaned[name] = _clean_field(name, value)
            except _FieldError as e:
                problems.append((name, e.zh, e.en))
        if problems:
            raise _invalid(problems)
        with self._sessions() as s, s.begin():
            row = s.get(Faq, str(faq_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
            if expected_seq is not None and row.seq != expected_seq:
                raise Conflict(
                    f"问答 {faq_id} 已被 {row.updated_by} 修改，请刷新后重试",
                    f"FAQ {faq_id!r} changed (seq {row.seq}, expected {expected_seq})",
                )
            old = _row_values(row)
            old_seq = row.seq
            new = dict(old, **cleaned)
            _finalise(new)
            problems = _check_record(new)
            if problems:
                raise _invalid(problems)
            diff = _diff(old, new)
            if not diff:
                return _record(row)
            seq = bump_version(s)
            now = utcnow()
            values = self._insert_values(new, seq, who, now)
            values.pop("created_at")
            result = s.execute(
                update(Faq)
                .where(Faq.id == row.id, Faq.seq == old_seq)
                .values(**{k: v for k, v in values.items() if k != "id"}),
                execution_options={"synchronize_session": False},
            )
            if getattr(result, "rowcount", 1) != 1:
                raise Conflict(
                    f"问答 {faq_id} 已被他人修改，请刷新后重试", f"FAQ {faq_id!r} changed concurrently"
                )
            version_no = self._last_versions(s, [row.id]).get(row.id, 0) + 1
            s.execute(
                insert(FaqVersion),
                [
                    {
                        "faq_id": row.id,
                        "version_no": version_no,
                        "seq": seq,
                        "action": action,
                        "at": now,
                        "by": who,
                        "changes": diff,
                        "snapshot": self._snapshot(new),
                        "note": clean_block(note)[:2000],
                    }
                ],
            )
            s.expire(row)
            fresh = s.get(Faq, str(faq_id))
            assert fresh is not None
            return _record(fresh)

    @staticmethod
    def _insert_values(values: dict[str, Any], seq: int, by: str, now: dt.datetime) -> dict[str, Any]:
        return {
            "id": values["id"],
            "question": values["question"],
            "similar": list(values["similar"]),
            "answer": values["answer"],
            "tags": list(values["tags"]),
            "unit": values["unit"],
            "source_policy": values["source_policy"],
            "source_article": values["source_article"],
            "valid_from": values["valid_from"],
            "valid_to": values["valid_to"],
            "status": values["status"],
            "seq": seq,
            "created_at": now,
            "updated_at": now,
            "updated_by": by,
            **_derived(values),
        }

    @staticmethod
    def _snapshot(values: dict[str, Any]) -> dict[str, Any]:
        return {name: _jsonable(values.get(name)) for name in FIELDS}

    @staticmethod
    def _last_versions(s: Session, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(ids):
            q = (
                select(FaqVersion.faq_id, func.max(FaqVersion.version_no))
                .where(FaqVersion.faq_id.in_(chunk))
                .group_by(FaqVersion.faq_id)
            )
            out.update({fid: int(n) for fid, n in s.execute(q)})
        return out

    @staticmethod
    def _next_ids(s: Session, n: int) -> builtins.list[str]:
        """Allocate `n` unused ids faq-000001... from a counter kept in kb_state (call after
        bump_version, which serialises writers)."""
        state = s.execute(
            select(KbState).where(KbState.key == _ID_COUNTER_KEY).with_for_update()
        ).scalar_one_or_none()
        if state is None:
            state = KbState(key=_ID_COUNTER_KEY, value=0)
            s.add(state)
        counter = state.value or 0
        out: builtins.list[str] = []
        while len(out) < n:
            want = n - len(out)
            candidates = [f"{_ID_PREFIX}{counter + i:06d}" for i in range(1, want + 1)]
            counter += want
            taken = set(s.scalars(select(Faq.id).where(Faq.id.in_(candidates))))
            out.extend(c for c in candidates if c not in taken)
        state.value = counter
        s.flush()
        return out

    # --- synonyms ---------------------------------------------------------------------------------
    def synonym_sets(self) -> builtins.list[SynonymSetRecord]:
        with self._sessions() as s:
            return [
                SynonymSetRecord(r.id, tuple(r.terms or ()), r.seq, r.updated_at, r.updated_by)
                for r in s.scalars(select(SynonymSet).order_by(SynonymSet.id))
            ]

    def synonyms(self) -> builtins.list[builtins.list[str]]:
        """The synonym sets as term lists (first term canonical), in a stable order."""
        return [list(r.terms) for r in self.synonym_sets()]

    def add_synonyms(self, terms: Iterable[str], *, by: str) -> int:
        who = _clean_by(by)
        clean = self._clean_terms(terms)
        with self._sessions() as s, s.begin():
            seq = bump_version(s)
            self._check_overlap(s, clean, None)
            row = SynonymSet(terms=clean, seq=seq, updated_at=utcnow(), updated_by=who)
            s.add(row)
            s.flush()
            return row.id

    def update_synonyms(self, set_id: int, terms: Iterable[str], *, by: str) -> None:
        who = _clean_by(by)
        clean = self._clean_terms(terms)
        with self._sessions() as s, s.begin():
            row = s.get(SynonymSet, int(set_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到同义词组 {set_id}", f"synonym set {set_id} not found")
            if list(row.terms or []) == clean:
                return
            seq = bump_version(s)
            self._check_overlap(s, clean, row.id)
            row.terms = clean
            row.seq = seq
            row.updated_at = utcnow()
            row.updated_by = who

    def delete_synonyms(self, set_id: int, *, by: str) -> None:
        _clean_by(by)
        with self._sessions() as s, s.begin():
            row = s.get(SynonymSet, int(set_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到同义词组 {set_id}", f"synonym set {set_id} not found")
            bump_version(s)
            s.delete(row)

    @staticmethod
    def _clean_terms(terms: Iterable[str]) -> builtins.list[str]:
        if isinstance(terms, str):
            terms = _TAG_SPLIT.split(terms)
        out: builtins.list[str] = []
        seen: set[str] = set()
        for t in terms:
            c = clean_line(t)
            if len(c) > MAX_TAG_LEN:
                raise InvalidInput(
                    f"同义词过长（上限 {MAX_TAG_LEN} 字）：{c[:50]}", f"synonym longer than {MAX_TAG_LEN}"
                )
            key = _search_norm(c)
            if c and key not in seen:
                seen.add(key)
                out.append(c)
        if len(out) < 2:
            raise InvalidInput(
                "同义词组至少需要两个不同的词", "a synonym set needs at least two distinct terms"
            )
        if len(out) > MAX_SYNONYM_TERMS:
            raise InvalidInput(
                f"同义词组最多 {MAX_SYNONYM_TERMS} 个词", f"more than {MAX_SYNONYM_TERMS} terms"
            )
        return out

    @staticmethod
    def _check_overlap(s: Session, terms: builtins.list[str], own_id: int | None) -> None:
        """A term may belong to one set only, or its canonical form would be ambiguous."""
        wanted = {_search_norm(t): t for t in terms}
        for other in s.scalars(select(SynonymSet)):
            if other.id == own_id:
                continue
            clash = [wanted[k] for k in (_search_norm(t) for t in other.terms or []) if k in wanted]
            if clash:
                raise Conflict(
                    f"“{clash[0]}”已在同义词组 {other.id}（{'、'.join(other.terms)}）中",
                    f"term {clash[0]!r} already belongs to synonym set {other.id}",
                )

    # --- import / export --------------------------------------------------------------------------
    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        fmt: str | None = None,
        on_duplicate: Literal["update", "skip", "error"] = "update",
        dry_run: bool = False,
        by: str = "import",
        allow_empty_answer: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_rows: int = MAX_ROWS,
    ) -> ImportReport:
        """Import FAQs from xlsx, csv or jsonl (by extension or `fmt`). Every row is validated first;
        any problem raises ImportFailed listing all of them and nothing is written. Otherwise all rows
        are written in one transaction (one version stamp). Existing entries are found by id, or by
        the normalised standard question for rows without an id; `on_duplicate` says whether to update
        them (versioned, action "import"), skip them or reject the file. Columns missing from the file
        keep their stored values on update."""
        if on_duplicate not in ("update", "skip", "error"):
            raise InvalidInput(
                "on_duplicate 应为 update、skip 或 error", f"bad on_duplicate {on_duplicate!r}"
            )
        who = _clean_by(by)
        p = Path(path)
        kind = _detect_format(p, fmt)
        _check_file(p, max_bytes)
        warnings: builtins.list[str] = []
        raw_rows = _read(p, kind, max_bytes, max_rows, warnings)
        parsed, errors = _validate_rows(raw_rows, tabular=kind in ("xlsx", "csv"))
        report = ImportReport(fmt=kind, rows=len(parsed), dry_run=dry_run, warnings=warnings)
        if errors or dry_run:
            # Check the good rows against the store too, so that one run reports every problem.
            with self._sessions() as s:
                plan = _plan(s, parsed, on_duplicate, allow_empty_answer)
            errors = sorted(errors + plan.errors, key=lambda e: e.row or 0)
            if errors:
                raise ImportFailed(errors)
            plan.fill(report)
            return report
        try:
            with self._sessions() as s, s.begin():
                seq = bump_version(s)
                plan = _plan(s, parsed, on_duplicate, allow_empty_answer)
                if plan.errors:
                    raise ImportFailed(plan.errors)
                plan.fill(report)
                if not plan.creates and not plan.updates:
                    raise _NothingToWrite  # roll back: the version stamp stays as it was
                self._write_plan(s, plan, seq, who)
                plan.fill(report)
                report.version = seq
        except _NothingToWrite:
            pass
        return report

    def _write_plan(self, s: Session, plan: _Plan, seq: int, who: str) -> None:
        now = utcnow()
        missing = [c for c in plan.creates if c.values["id"] is None]
        for c, new_id in zip(missing, self._next_ids(s, len(missing)), strict=True):
            c.values["id"] = new_id
        # New entries start at version 1 (entries are never deleted, so no versions exist for them).
        last = self._last_versions(s, [u.values["id"] for u in plan.updates])
        _bulk_insert(s, Faq.__table__, [self._insert_values(c.values, seq, who, now) for c in plan.creates])
        if plan.updates:
            rows = []
            for u in plan.updates:
                v = self._insert_values(u.values, seq, who, now)
                v.pop("created_at")
                rows.append(v)
            _bulk_update_faq(s, rows)
        versions = [
            {
                "faq_id": c.values["id"],
                "version_no": last.get(c.values["id"], 0) + 1,
                "seq": seq,
                "action": "import",
                "at": now,
                "by": who,
                "changes": _diff({}, c.values),
                "snapshot": self._snapshot(c.values),
                "note": "",
            }
            for c in plan.creates
        ] + [
            {
                "faq_id": u.values["id"],
                "version_no": last.get(u.values["id"], 0) + 1,
                "seq": seq,
                "action": "import",
                "at": now,
                "by": who,
                "changes": u.diff,
                "snapshot": self._snapshot(u.values),
                "note": "",
            }
            for u in plan.updates
        ]
        _bulk_insert(s, FaqVersion.__table__, versions)

    def export_file(
        self, path: str | os.PathLike[str], *, fmt: str | None = None, status: str | None = None
    ) -> int:
        """Write the store (or the entries with one status) to xlsx, csv or jsonl; returns the number
        of entries. The file is written to a temporary name and moved into place."""
        p = Path(path)
        kind = _detect_format(p, fmt)
        records = self.list(status=status, limit=10**9)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=p.suffix, dir=p.parent)
        os.close(fd)
        try:
            writer: Callable[[Path, list[FaqRecord]], None] = {
                "xlsx": _write_xlsx,
                "csv": _write_csv,
                "jsonl": _write_jsonl,
                "json": _write_json,
            }[kind]
            writer(Path(tmp_name), records)
            os.replace(tmp_name, p)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return len(records)


# --- import internals ---------------------------------------------------------------------------------
@dataclass
class _RawRow:
    line: int
    values: dict[str, Any]  # field -> raw value (only the fields present in the file)
    labels: dict[str, str]  # field -> column name as written in the file


@dataclass
class _Parsed:
    line: int
    values: dict[str, Any]  # cleaned values of the present fields
    labels: dict[str, str]


@dataclass
class _Create:
    line: int
    values: dict[str, Any]


@dataclass
class _Update:
    line: int
    values: dict[str, Any]
    diff: dict[str, list[Any]]


@dataclass
class _Plan:
    creates: list[_Create] = field(default_factory=list)
    updates: list[_Update] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def fill(self, report: ImportReport) -> None:
        report.created = len(self.creates)
        report.updated = len(self.updates)
        report.unchanged = len(self.unchanged)
        report.skipped = len(self.skipped)
        report.created_ids = [c.values["id"] for c in self.creates if c.values["id"] is not None]
        report.updated_ids = [u.values["id"] for u in self.updates]
        report.skipped_ids = list(self.skipped)


def _file_error(zh: str, en: str) -> ImportFailed:
    return ImportFailed([RowError(None, None, zh, en)])


MAX_JSON_DEPTH = 10  # a row is an object of scalars and lists of strings: two levels
_TOO_DEEP_ZH = f"JSON 嵌套层数过多（最多 {MAX_JSON_DEPTH} 层）"
_TOO_DEEP_EN = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def _json_deeper_than(value: object, limit: int) -> bool:
    """Whether parsed JSON nests more than `limit` arrays/objects (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _detect_format(p: Path, fmt: str | None) -> str:
    name = (fmt or p.suffix.lstrip(".")).casefold().lstrip(".")
    aliases = {
        "xlsx": "xlsx",
        "xlsm": "xlsx",
        "csv": "csv",
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "json": "json",
    }
    if name in aliases:
        return aliases[name]
    if name in ("xls", "et", "wps"):
        raise _file_error(
            "不支持旧版 .xls 文件，请在 Excel/WPS 中另存为 .xlsx",
            "legacy .xls is not supported; save as .xlsx",
        )
    raise _file_error(
        f"无法识别的文件格式：{name or '（无扩展名）'}（支持 xlsx、csv、jsonl）",
        f"unknown file format {name!r} (xlsx, csv, jsonl supported)",
    )


def _check_file(p: Path, max_bytes: int) -> None:
    """Reject a missing, empty or oversized file from its size alone (nothing is read)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _file_error(f"文件不存在：{p.name}", f"file not found: {p}") from None
    except OSError as e:
        raise _file_error(f"无法读取文件：{p.name}", f"cannot stat {p}: {e}") from None
    if not p.is_file():
        raise _file_error(f"不是文件：{p.name}", f"not a regular file: {p}")
    if st.st_size == 0:
        raise _file_error("文件为空", "the file is empty")
    if st.st_size > max_bytes:
        raise _file_error(
            f"文件过大（{st.st_size / 1048576:.1f} MB，上限 {max_bytes / 1048576:.1f} MB），请拆分后导入",
            f"file too large ({st.st_size} bytes, limit {max_bytes})",
        )


def _read_bytes(p: Path, max_bytes: int) -> bytes:
    with p.open("rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _file_error("文件过大，请拆分后导入", f"file larger than {max_bytes} bytes")
    if not data:
        raise _file_error("文件为空", "the file is empty")
    return data


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK)."""
    if data.startswith(b"PK\x03\x04"):
        raise _file_error("这是 Excel（xlsx）文件，请使用 .xlsx 扩展名导入", "this is an xlsx file, not csv")
    text = decode_text_bytes(data)
    if text is None or _NOT_TEXT.search(text):
        raise _file_error(
            "文件编码无法识别：不是 UTF-8 或 GBK/GB18030 文本（可能是 UTF-16 无 BOM 或二进制文件）。"
            "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重试",
            "unrecognised encoding: not UTF-8 or GBK/GB18030 text (UTF-16 without BOM or binary?)",
        )
    return text.lstrip("\ufeff")


def _header_key(h: object) -> str:
    s = unicodedata.normalize("NFKC", "" if h is None else str(h)).casefold()
    s = re.sub(r"\((必填|选填|可选|required|optional)\)", "", s)
    return re.sub(r"[\s*_\-]", "", s)


_HEADER_INDEX: dict[str, str] = {_header_key(a): f for f, aliases in _HEADER_ALIASES.items() for a in aliases}


def _map_header(
    cells: Sequence[object],
) -> tuple[dict[int, str], dict[str, str], list[str], list[RowError], int]:
    """Column index -> field, field -> label, ignored labels, errors, number of recognised columns."""
    columns: dict[int, str] = {}
    labels: dict[str, str] = {}
    ignored: list[str] = []
    errors: list[RowError] = []
    for i, cell in enumerate(cells):
        label = clean_line("" if cell is None else cell)
        if not label:
            continue
        name = _HEADER_INDEX.get(_header_key(label))
        if name is None:
            ignored.append(label)
        elif name in labels:
            errors.append(
                RowError(
                    None, label, f"与「{labels[name]}」重复（同一列出现两次）", f"duplicate column for {name}"
                )
            )
        else:
            columns[i] = name
            labels[name] = label
    return columns, labels, ignored, errors, len(columns)


def _tabular(
    rows: Iterator[tuple[int, Sequence[object]]], max_rows: int, warnings: list[str]
) -> list[_RawRow]:
    """Find the header among the first rows (a title row above it is allowed), then map data rows."""
    scanned: list[tuple[int, Sequence[object]]] = []
    header: tuple[dict[int, str], dict[str, str], list[str], list[RowError], int] | None = None
    header_line = 0
    for line, cells in rows:
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        mapped = _map_header(cells)
        if "question" in mapped[1]:
            header, header_line = mapped, line
            break
        scanned.append((line, cells))
        if len(scanned) >= 10:
            break
    if header is None:
        if not scanned:
            raise _file_error("文件中没有内容", "the file has no rows")
        accepted = "、".join(_HEADER_ALIASES["question"][:3])
        raise ImportFailed(
            [
                RowError(
                    scanned[0][0],
                    FIELD_LABELS["question"],
                    f"缺少必需的列「标准问题」（表头可写：{accepted} 或 question）",
                    "missing required column 'question'",
                )
            ]
        )
    columns, labels, ignored, errors, _ = header
    errors = [RowError(header_line, e.column, e.message, e.english) for e in errors]
    if errors:
        raise ImportFailed(errors)
    if ignored:
        warnings.append(f"已忽略未识别的列：{'、'.join(ignored)}")
    out: list[_RawRow] = []
    for line, cells in rows:
        values: dict[str, Any] = {}
        blank = True
        for i, name in columns.items():
            v = cells[i] if i < len(cells) else None
            if isinstance(v, str):
                v = _unescape(v)
            if v is not None and str(v).strip():
                blank = False
            values[name] = v
        if blank:
            continue
        if len(out) >= max_rows:
            raise _file_error(f"行数过多（上限 {max_rows} 行），请拆分后导入", f"more than {max_rows} rows")
        out.append(_RawRow(line, values, labels))
    if not out:
        raise _file_error("文件中没有数据行（只有表头）", "no data rows below the header")
    return out


def _read(p: Path, kind: str, max_bytes: int, max_rows: int, warnings: list[str]) -> list[_RawRow]:
    if kind == "xlsx":
        return _read_xlsx(p, max_bytes, max_rows, warnings)
    data = _read_bytes(p, max_bytes)
    if kind == "csv":
        return _read_csv(data, max_rows, warnings)
    return _read_json(data, kind, max_rows, warnings)


def _read_csv(data: bytes, max_rows: int, warnings: list[str]) -> list[_RawRow]:
    text = _decode(data)
    if not text.strip():
        raise _file_error("文件为空", "the file is empty")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, Sequence[object]]]:
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as e:
            raise _file_error(
                f"CSV 格式错误（约第 {reader.line_num} 行）：{e}",
                f"malformed CSV near line {reader.line_num}: {e}",
            ) from None

    return _tabular(rows(), max_rows, warnings)


def _read_xlsx(p: Path, max_bytes: int, max_rows: int, warnings: list[str]) -> list[_RawRow]:
    import openpyxl

    try:
        with zipfile.ZipFile(p) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError):
        raise _file_error(
            "不是有效的 xlsx 文件（文件损坏或不是 Excel 2007 以上格式）", "not a valid xlsx (zip) file"
        ) from None
    if unpacked > 10 * max_bytes:
        raise _file_error("xlsx 文件解压后过大，请拆分后导入", f"xlsx unpacks to {unpacked} bytes")
    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for malformed workbooks
        raise _file_error(
            "无法读取 xlsx 文件（文件损坏？）", f"cannot open workbook: {type(e).__name__}: {e}"
        ) from None
    try:
        if not wb.worksheets:
            raise _file_error("xlsx 文件中没有工作表", "workbook has no worksheets")
        ws = wb.worksheets[0]
        if len(wb.worksheets) > 1:
            warnings.append(f"只导入了第一个工作表「{ws.title}」")

        def rows() -> Iterator[tuple[int, Sequence[object]]]:
            try:
                yield from enumerate(ws.iter_rows(values_only=True), start=1)
            except PolicybotError:
                raise
            except Exception as e:  # malformed sheet XML
                raise _file_error(
                    "xlsx 工作表内容损坏", f"cannot read worksheet: {type(e).__name__}: {e}"
                ) from None

        raw = _tabular(rows(), max_rows, warnings)
    finally:
        wb.close()
    for r in raw:  # numbers in date columns are Excel day numbers
        for name in ("valid_from", "valid_to"):
            v = r.values.get(name)
            if isinstance(v, int | float) and not isinstance(v, bool):
                r.values[name] = _ExcelSerial(v)
    return raw


@dataclass(frozen=True)
class _ExcelSerial:
    value: float


def _read_json(data: bytes, kind: str, max_rows: int, warnings: list[str]) -> list[_RawRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(
            "文件编码不是 UTF-8（JSON/JSONL 文件必须是 UTF-8）", "JSON/JSONL must be UTF-8"
        ) from None
    if _RAW_CONTROL.search(text):
        raise _file_error(
            "文件包含非文本字符（编码错误，例如 UTF-16，或二进制文件）",
            "file contains control characters (wrong encoding such as UTF-16, or binary)",
        )
    items: list[tuple[int, object]] = []
    errors: list[RowError] = []
    if kind == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise _file_error(f"不是有效的 JSON：第 {e.lineno} 行 {e.msg}", f"invalid JSON: {e}") from None
        except RecursionError:
            raise _file_error(_TOO_DEEP_ZH, _TOO_DEEP_EN) from None
        if not isinstance(doc, list):
            raise _file_error("JSON 文件应为对象数组", "JSON file must be an array of objects")
        for i, obj in enumerate(doc, start=1):
            if _json_deeper_than(obj, MAX_JSON_DEPTH - 1):  # the array itself is one level
                errors.append(RowError(i, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
            else:
                items.append((i, obj))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(
                    RowError(
                        n, None, f"不是有效的 JSON（{e.msg}，第 {e.colno} 列）", f"invalid JSON: {e.msg}"
                    )
                )
                continue
            except RecursionError:  # nested deeper than the interpreter's recursion limit
                errors.append(RowError(n, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
                continue
            if _json_deeper_than(obj, MAX_JSON_DEPTH):
                errors.append(RowError(n, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
            else:
                items.append((n, obj))
    if len(items) + len(errors) > max_rows:
        raise _file_error(f"行数过多（上限 {max_rows} 行），请拆分后导入", f"more than {max_rows} rows")
    out: list[_RawRow] = []
    unknown: set[str] = set()
    for n, obj in items:
        if not isinstance(obj, dict):
            errors.append(RowError(n, None, "每行应为一个 JSON 对象", "each line must be a JSON object"))
            continue
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, v in obj.items():
            name = _HEADER_INDEX.get(_header_key(key))
            if name is None:
                unknown.add(str(key))
                continue
            if name in values:
                errors.append(RowError(n, str(key), f"与「{labels[name]}」重复", f"duplicate key for {name}"))
                continue
            values[name] = v
            labels[name] = str(key)
        if "question" not in values:
            errors.append(RowError(n, "question", "缺少 question（标准问题）", "missing key 'question'"))
            continue
        out.append(_RawRow(n, values, labels))
    if errors:
        raise ImportFailed(errors)
    if not out:
        raise _file_error("文件中没有数据", "no records in the file")
    if unknown:
        warnings.append(f"已忽略未识别的字段：{'、'.join(sorted(unknown))}")
    return out


def _needs_escape(s: str) -> bool:
    """Text a spreadsheet would run as a formula (= + - @ tab CR first), or text that already looks
    escaped (quotes before such text), which must be escaped again to survive the round trip."""
    return s.startswith(_FORMULA_START) or (s.startswith("'") and _needs_escape(s[1:]))


def _unescape(s: str) -> str:
    """Undo the escape written by export: strip the one leading quote it added."""
    return s[1:] if s.startswith("'") and _needs_escape(s[1:]) else s


def formula_safe(value: object) -> object:
    """A spreadsheet cell (xlsx or CSV) that shows text, never runs it as a formula: a leading quote
    before = + - @ tab CR (and before text that already looks escaped, so that import can undo it)."""
    if isinstance(value, str) and _needs_escape(value):
        return "'" + value
    return value


def _validate_rows(raw: list[_RawRow], *, tabular: bool) -> tuple[list[_Parsed], list[RowError]]:
    """Clean every field of every row, then check ids and questions are unique within the file."""
    parsed: list[_Parsed] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    seen_questions: dict[str, int] = {}
    for r in raw:
        values: dict[str, Any] = {}
        bad = False
        for name, v in r.values.items():
            try:
                if isinstance(v, _ExcelSerial):
                    values[name] = parse_date(v.value, excel_serial=True)
                else:
                    values[name] = _clean_field(name, v, excel_serial=False)
            except _FieldError as e:
                errors.append(RowError(r.line, r.labels.get(name, FIELD_LABELS[name]), e.zh, e.en))
                bad = True
        if "question" in values and not values["question"]:
            errors.append(RowError(r.line, r.labels.get("question"), "标准问题不能为空", "question is empty"))
            bad = True
        fid = values.get("id")
        if fid is not None:
            if fid in seen_ids:
                errors.append(
                    RowError(
                        r.line,
                        r.labels.get("id"),
                        f"编号 {fid} 与第{seen_ids[fid]}行重复",
                        f"duplicate id {fid!r} (also row {seen_ids[fid]})",
                    )
                )
                bad = True
            else:
                seen_ids[fid] = r.line
        elif values.get("question"):
            key = question_key(values["question"])
            if key in seen_questions:
                errors.append(
                    RowError(
                        r.line,
                        r.labels.get("question"),
                        f"标准问题与第{seen_questions[key]}行重复",
                        f"same question as row {seen_questions[key]}",
                    )
                )
                bad = True
            else:
                seen_questions[key] = r.line
        vf, vt = values.get("valid_from"), values.get("valid_to")
        if vf is not None and vt is not None and vt < vf:
            errors.append(
                RowError(
                    r.line,
                    r.labels.get("valid_to"),
                    f"失效日期 {vt} 早于生效日期 {vf}",
                    f"valid_to {vt} is before valid_from {vf}",
                )
            )
            bad = True
        if not bad:
            parsed.append(_Parsed(r.line, values, r.labels))
    return parsed, errors


def _plan(s: Session, parsed: list[_Parsed], on_duplicate: str, allow_empty_answer: bool) -> _Plan:
    """Match rows to stored entries (bulk queries) and decide create / update / skip per row."""
    plan = _Plan()
    ids = [p.values["id"] for p in parsed if p.values.get("id") is not None]
    keys = list({question_key(p.values["question"]) for p in parsed if p.values.get("id") is None})
    # Plain rows, not entities: no identity-map overhead for large files.
    columns = select(*(getattr(Faq, name) for name in FIELDS), Faq.question_key)
    by_id: dict[str, Any] = {}
    for chunk in _chunks(ids, 2000):
        by_id.update({r.id: r for r in s.execute(columns.where(Faq.id.in_(chunk)))})
    by_key: dict[str, list[Any]] = {}
    for chunk in _chunks(keys, 2000):
        for r in s.execute(columns.where(Faq.question_key.in_(chunk)).order_by(Faq.id)):
            by_key.setdefault(r.question_key, []).append(r)
    claimed: dict[str, int] = {}
    for p in parsed:
        target: Any
        column = p.labels.get("id") if p.values.get("id") is not None else p.labels.get("question")
        if p.values.get("id") is not None:
            target = by_id.get(p.values["id"])
        else:
            matches = by_key.get(question_key(p.values["question"]), [])
            if len(matches) > 1:
                plan.errors.append(
                    RowError(
                        p.line,
                        column,
                        f"标准问题与多条已有问答相同（{'、'.join(m.id for m in matches[:5])}），请填写编号",
                        f"question matches several entries {[m.id for m in matches[:5]]}; give an id",
                    )
                )
                continue
            target = matches[0] if matches else None
        if target is None:
            values = _defaults()
            values.update(p.values)
            _finalise(values)
            problems = _check_record(values, allow_empty_answer=allow_empty_answer)
            if problems:
                plan.errors.extend(
                    RowError(p.line, p.labels.get(f, FIELD_LABELS[f]), zh, en) for f, zh, en in problems
                )
                continue
            plan.creates.append(_Create(p.line, values))
            continue
        if target.id in claimed:
            plan.errors.append(
                RowError(
                    p.line,
                    column,
                    f"与第{claimed[target.id]}行指向同一条问答 {target.id}",
                    f"same stored entry {target.id!r} as row {claimed[target.id]}",
                )
            )
            continue
        claimed[target.id] = p.line
        if on_duplicate == "skip":
            plan.skipped.append(target.id)
            continue
        if on_duplicate == "error":
            plan.errors.append(
                RowError(p.line, column, f"问答已存在（编号 {target.id}）", f"entry exists: {target.id}")
            )
            continue
        old = _row_values(target)
        new = dict(old)
        new.update({k: v for k, v in p.values.items() if k != "id"})
        _finalise(new)
        problems = _check_record(new, allow_empty_answer=allow_empty_answer)
        if problems:
            plan.errors.extend(
                RowError(p.line, p.labels.get(f, FIELD_LABELS[f]), zh, en) for f, zh, en in problems
            )
            continue
        diff = _diff(old, new)
        if diff:
            plan.updates.append(_Update(p.line, new, diff))
        else:
            plan.unchanged.append(target.id)
    return plan


# --- export writers -----------------------------------------------------------------------------------
def _cells(r: FaqRecord) -> list[object]:
    return [
        r.id,
        r.question,
        "\n".join(r.similar),
        r.answer,
        "，".join(r.tags),
        r.unit or "",
        r.source_policy or "",
        r.source_article or "",
        r.valid_from,
        r.valid_to,
        STATUS_LABELS.get(r.status, r.status),
    ]


def _write_xlsx(path: Path, records: list[FaqRecord]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("问答库")
    widths = [14, 40, 40, 60, 20, 20, 24, 10, 12, 12, 8]
    for i, w in enumerate(widths):
        ws.column_dimensions[chr(ord("A") + i)].width = w
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for name in FIELDS:
        c = WriteOnlyCell(ws, value=FIELD_LABELS[name])
        c.font = bold
        header.append(c)
    ws.append(header)
    for r in records:
        row = []
        for i, value in enumerate(_cells(r)):
            c = WriteOnlyCell(ws, value=formula_safe(value))
            if isinstance(value, dt.date):
                c.number_format = "yyyy-mm-dd"
            if i in (1, 2, 3):
                c.alignment = wrap
            row.append(c)
        ws.append(row)
    wb.save(path)


def _write_csv(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([FIELD_LABELS[n] for n in FIELDS])
        for r in records:
            w.writerow([formula_safe(v.isoformat() if isinstance(v, dt.date) else v) for v in _cells(r)])


def _write_jsonl(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")


def _write_json(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        json.dump([r.as_dict() for r in records], f, ensure_ascii=False, indent=1)
        f.write("\n")
