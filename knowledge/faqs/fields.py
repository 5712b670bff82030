"""Cleaning and validation of FAQ field values, wherever they come from (the store's add and edit, the
console, the command line, an import file): the text cleaning (NFC, control and zero-width characters,
whitespace), the length limits, the parsing of dates and statuses (Chinese aliases included), the
splitting of similar phrasings and tags, the whole-record rules (a published entry needs an answer,
valid_to not before valid_from), the normalised question key for duplicate detection, and the
bilingual errors (`FieldError` for one value, `invalid_input` for a list of problems).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from knowledge.errors import InvalidInput
from knowledge.faqs.records import FIELD_LABELS, STATUSES

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

MAX_QUESTION = 500
MAX_ANSWER = 20_000
MAX_SIMILAR = 200
MAX_TAGS = 30
MAX_TAG_LEN = 50
_LIMITS = {"unit": 200, "source_policy": 200, "source_article": 100}
_ID_RE = re.compile(r"^[\w.\-]{1,64}$")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SIMILAR_SPLIT = re.compile(r"[\n|｜]")
TAG_SPLIT = re.compile(r"[\n,，;；|｜、]")
_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NON_WORD = re.compile(r"[\W_]+")


class FieldError(Exception):
    """One bad field value, with the Chinese message for staff (`zh`) and the English one (`en`)."""

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


def search_norm(text: str) -> str:
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
        raise FieldError(
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
            raise FieldError(f"日期不存在：{s}", f"no such date: {s}") from None
    raise FieldError(
        f"日期格式无法识别：{s}（应为 YYYY-MM-DD）", f"unrecognised date {s!r} (expected YYYY-MM-DD)"
    )


def parse_status(value: object) -> str:
    s = clean_line(value).casefold()
    if not s:
        return "published"
    status = _STATUS_ALIASES.get(s)
    if status is None:
        raise FieldError(
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
        raise FieldError(
            f"编号无效：{s[:80]}（只能包含字母、数字、汉字、- _ .，最长 64 个字符）",
            f"invalid id {s[:80]!r} (letters, digits, - _ . only, at most 64 characters)",
        )
    return s


def clean_field(name: str, value: object, *, excel_serial: bool = False) -> Any:
    """Clean one field value; raises FieldError with a bilingual message."""
    if name == "id":
        return _clean_id(value)
    if name == "question":
        q = clean_line("" if value is None else value)
        if len(q) > MAX_QUESTION:
            raise FieldError(
                f"标准问题过长（{len(q)} 字，上限 {MAX_QUESTION}）", f"question longer than {MAX_QUESTION}"
            )
        return q
    if name == "answer":
        a = clean_block("" if value is None else value)
        if len(a) > MAX_ANSWER:
            raise FieldError(
                f"答案过长（{len(a)} 字，上限 {MAX_ANSWER}）", f"answer longer than {MAX_ANSWER}"
            )
        return a
    if name == "similar":
        out: list[str] = []
        for part in _split(value, _SIMILAR_SPLIT):
            if "|" in part or "｜" in part:
                raise FieldError(
                    "相似问法中不能包含 | 或 ｜（它们是分隔符）", "similar phrasing contains a separator |"
                )
            p = clean_line(part)
            if len(p) > MAX_QUESTION:
                raise FieldError(
                    f"相似问法过长（上限 {MAX_QUESTION} 字）", f"similar phrasing longer than {MAX_QUESTION}"
                )
            if p:
                out.append(p)
        if len(out) > MAX_SIMILAR:
            raise FieldError(
                f"相似问法过多（上限 {MAX_SIMILAR} 条）", f"more than {MAX_SIMILAR} similar phrasings"
            )
        return out
    if name == "tags":
        tags: list[str] = []
        seen: set[str] = set()
        for part in _split(value, TAG_SPLIT):
            if TAG_SPLIT.search(part):
                raise FieldError(
                    f"标签中不能包含分隔符：{part[:50]}", f"tag contains a separator: {part[:50]!r}"
                )
            t = clean_line(part)
            if len(t) > MAX_TAG_LEN:
                raise FieldError(
                    f"标签过长（上限 {MAX_TAG_LEN} 字）：{t[:50]}", f"tag longer than {MAX_TAG_LEN}"
                )
            if t and t.casefold() not in seen:
                seen.add(t.casefold())
                tags.append(t)
        if len(tags) > MAX_TAGS:
            raise FieldError(f"标签过多（上限 {MAX_TAGS} 个）", f"more than {MAX_TAGS} tags")
        return tags
    if name in _LIMITS:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        s = clean_line("" if value is None else value)
        if len(s) > _LIMITS[name]:
            raise FieldError(
                f"{FIELD_LABELS[name]}过长（上限 {_LIMITS[name]} 字）", f"{name} longer than {_LIMITS[name]}"
            )
        return s or None
    if name in ("valid_from", "valid_to"):
        return parse_date(value, excel_serial=excel_serial)
    if name == "status":
        return parse_status(value)
    if name == "service_url":
        return clean_url(value)
    raise FieldError(f"未知字段：{name}", f"unknown field {name!r}")


MAX_URL = 500
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.I)


def clean_url(value: object) -> str | None:
    """A service link (办事链接): empty -> None, else an http(s) address of at most 500 characters."""
    s = clean_line(value)
    if not s:
        return None
    if len(s) > MAX_URL:
        raise FieldError(f"办事链接过长（上限 {MAX_URL} 个字符）", f"service_url longer than {MAX_URL}")
    if not _URL_RE.match(s):
        raise FieldError(
            f"办事链接应以 http:// 或 https:// 开头：{s[:80]}",
            f"service_url is not an http(s) URL: {s[:80]!r}",
        )
    return s


def finalise(values: dict[str, Any]) -> None:
    """Drop similar phrasings that repeat the question or each other (compared normalised)."""
    seen = {question_key(values.get("question") or "")}
    kept: list[str] = []
    for s in values.get("similar") or []:
        k = question_key(s) or s
        if k not in seen:
            seen.add(k)
            kept.append(s)
    values["similar"] = kept


def check_record(values: dict[str, Any], *, allow_empty_answer: bool = False) -> list[tuple[str, str, str]]:
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


def defaults() -> dict[str, Any]:
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
        "service_url": None,
    }


def clean_by(by: str) -> str:
    s = clean_line(by)
    if not s:
        raise InvalidInput("缺少操作人", "the acting user ('by') is required")
    return s[:100]


def invalid_input(problems: Sequence[tuple[str, str, str]]) -> InvalidInput:
    zh = "；".join(f"{FIELD_LABELS.get(f, f)}：{m}" for f, m, _ in problems)
    en = "; ".join(f"{f}: {e}" for f, _, e in problems)
    return InvalidInput(zh, en)
