"""Policy documents and their citable passages: this module owns the `policy` and `policy_passage`
rows. It imports a policy text (plain text or markdown, UTF-8 / UTF-8-BOM / GB18030), extracts the
metadata a citation needs from the document header when the caller does not give it (title, 文号,
发文机关, 成文日期) and splits the body along its numbered article structure (一、 / （一） / 1. /
（1）) into passages labelled with their path (二(二), 二.4, 三(二)1), so that an answer can cite
《标题》（文号）二(二). It keeps each policy's status (有效 / 已修订 / 失效 / 废止), answers whether a
policy (and an FAQ that rests on it) is still current, and searches the passages of current
policies through an in-memory `knowledge.matcher.Matcher` that follows the store's version stamp.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import Passage, Policy, bump_version, current_version, utcnow
from knowledge.text import decode_text_bytes

if TYPE_CHECKING:
    from knowledge.matcher import Matcher
    from knowledge.text import TextProcessor

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("有效", "已修订", "失效", "废止")
INACTIVE_STATUSES: frozenset[str] = frozenset({"失效", "废止"})
ALLOWED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown"})
MAX_FILE_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_PASSAGE_CHARS = 600

COVER_LABEL = "印发通知"
PREFACE_LABEL = "前言"

# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------

_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100}
_CN_NUM = "一二三四五六七八九十百〇零"

_TERMINAL = "。！？；!?;"
_PARA_END = _TERMINAL + "：:”’」』）)》"
_CJK = r"\u3400-\u9fff"


def cn_to_int(s: str) -> int:
    """Parse a Chinese numeral (一 … 九十九, 一百 …, or digit-wise 二〇二三) or ASCII digits."""
    s = s.strip()
    if not s:
        raise ValueError("empty numeral")
    if s.isdigit():
        return int(s)
    if all(ch in _CN_DIGITS for ch in s):  # digit-wise, e.g. 二〇二三
        value = 0
        for ch in s:
            value = value * 10 + _CN_DIGITS[ch]
        return value
    total, current = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            raise ValueError(f"not a Chinese numeral: {s!r}")
    return total + current


def squash_cjk_spaces(s: str) -> str:
    """Remove spaces that a layout put between Chinese characters (line-wrapped titles)."""
    s = re.sub(rf"(?<=[{_CJK}《》“”、，])[ \t\u3000]+(?=[{_CJK}《》“”])", "", s)
    return re.sub(r"\s+", " ", s).strip()


_DOCNO = re.compile(
    rf"([{_CJK}]{{1,14}})\s*[〔\[［【（(]\s*((?:19|20)\d{{2}})\s*[〕\]］】）)]\s*第?\s*(\d{{1,5}})\s*号"
)


def normalise_doc_no(doc_no: str) -> str:
    """Canonical form of a 文号: brackets become 〔〕 (GB/T 9704), spaces and 第 go away.

    `青人社[2023]11号`, `青人社（2023）11号` and `青人社〔2023〕第11号` all give `青人社〔2023〕11号`;
    a string that does not look like a 文号 is returned with whitespace removed.
    """
    s = re.sub(r"\s+", "", doc_no or "")
    m = _DOCNO.fullmatch(s)
    if m:
        return f"{m.group(1)}〔{m.group(2)}〕{int(m.group(3))}号"
    return s


_DATE = re.compile(
    r"^[（(]?\s*((?:19|20)\d{2}|[〇零一二三四五六七八九]{4})\s*年\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月"
    r"\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*日\s*[）)]?$"
)


def parse_cn_date(s: str) -> dt.date | None:
    """A whole-line date such as 2023年3月31日 or 二〇二三年三月三十一日 (None if not one)."""
    m = _DATE.match(s.strip())
    if not m:
        return None
    try:
        return dt.date(cn_to_int(m.group(1)), cn_to_int(m.group(2)), cn_to_int(m.group(3)))
    except ValueError:
        return None


def _clean_line(raw: str) -> str:
    """Strip layout: indentation, markdown heading marks, bold markers, block quotes, rules."""
    s = raw.replace("\u3000", " ").replace("\xa0", " ").strip()
    if re.fullmatch(r"[-*_=~]{3,}", s.replace(" ", "")):
        return ""
    s = re.sub(r"^#{1,6}\s*", "", s)
    s = re.sub(r"^>\s*", "", s)
    s = s.replace("**", "").replace("__", "")
    return s.strip()


def _join(parts: Sequence[str]) -> str:
    """Join lines: a line that ended mid-sentence was broken by layout and is glued back on."""
    out = ""
    for part in parts:
        if not out:
            out = part
        elif out[-1] in _PARA_END:
            out += "\n" + part
        elif re.match(rf"[{_CJK}]", out[-1]) or re.match(rf"[{_CJK}]", part[0]):
            out += part
        else:
            out += " " + part
    return out


# ---------------------------------------------------------------------------------------------
# Metadata extraction
# ---------------------------------------------------------------------------------------------

TITLE_KEYWORDS: tuple[str, ...] = (
    "工作要点",
    "实施方案",
    "实施办法",
    "实施意见",
    "实施细则",
    "通知",
    "意见",
    "办法",
    "规定",
    "细则",
    "方案",
    "决定",
    "规划",
    "指南",
    "公告",
    "通告",
    "条例",
    "要点",
)
_ORGAN_SUFFIX = re.compile(r"(局|厅|部|委|委员会|办|办公室|政府|中心|院|署|会|处|所|街道办事处|镇|街道)$")
_PRINTED = re.compile(r"关于印发\s*《(.+?)》")


@dataclass(frozen=True)
class PolicyMeta:
    """Metadata found in a document header; every field may be missing."""

    title: str | None = None
    doc_no: str | None = None
    issuer: str | None = None
    issued_on: dt.date | None = None


def _is_titlelike(s: str) -> bool:
    return (
        0 < len(s) <= 100
        and s[-1] not in _TERMINAL + "，,：:"
        and any(k in s for k in TITLE_KEYWORDS)
        and _heading_of(s) is None
    )


def extract_metadata(text: str) -> PolicyMeta:
    """Heuristics over the document header (the lines before the first numbered article)."""
    lines = [c for c in (_clean_line(x) for x in text.splitlines()) if c]
    head = _preamble_lines(lines)
    title: str | None = None
    for s in head:
        m = _PRINTED.search(s)
        if m and len(s) <= 120 and s[-1] not in _TERMINAL:
            title = squash_cjk_spaces(m.group(1))
            break
    if title is None:
        for s in head:
            if _is_titlelike(s) and not s.endswith("文件") and not _DOCNO.fullmatch(s.replace(" ", "")):
                title = squash_cjk_spaces(s)
                break

    doc_no: str | None = None
    for s in head[:20]:
        compact = s.replace(" ", "")
        if _DOCNO.fullmatch(compact):
            doc_no = normalise_doc_no(compact)
            break
    if doc_no is None:
        for s in head[:20]:
            m = _DOCNO.search(s.replace(" ", ""))
            if m and len(s) <= 40:
                doc_no = normalise_doc_no(m.group(0))
                break

    issued_on: dt.date | None = None
    issuer: str | None = None
    for i, s in enumerate(lines):
        d = parse_cn_date(s)
        if d is None:
            continue
        issued_on = d
        if i > 0:
            prev = squash_cjk_spaces(lines[i - 1])
            if (
                len(prev) <= 40
                and not re.search(r"[。，,；;：:！？!?《》]", prev)
                and _ORGAN_SUFFIX.search(prev)
            ):
                issuer = prev
        break
    if issuer is None:
        for s in head[:10]:
            compact = squash_cjk_spaces(s)
            if compact.endswith("文件") and len(compact) <= 40 and _ORGAN_SUFFIX.search(compact[:-2]):
                issuer = compact[:-2]
                break
    if issuer is None and title is None:
        pass
    if issuer is None:
        for s in head[:10]:
            m = re.match(rf"^([{_CJK}]{{2,30}}?)\s*关于", squash_cjk_spaces(s))
            if m and _ORGAN_SUFFIX.search(m.group(1)):
                issuer = m.group(1)
                break
    return PolicyMeta(title=title, doc_no=doc_no, issuer=issuer, issued_on=issued_on)


# ---------------------------------------------------------------------------------------------
# Passage splitting
# ---------------------------------------------------------------------------------------------

# Numbering schemes, outermost first. Rank decides nesting; the label style follows the scheme.
_HEADINGS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^([{_CN_NUM}]{{1,4}})\s*、\s*(.*)$"),  # 一、
    re.compile(rf"^[（(]\s*([{_CN_NUM}]{{1,4}})\s*[）)]\s*(.*)$"),  # （一）
    re.compile(r"^(\d{1,3})\s*(?:[、．]|\.(?!\d))\s*(.*)$"),  # 1. 1、 1．
    re.compile(r"^[（(]\s*(\d{1,3})\s*[）)]\s*(.*)$"),  # （1）
)
_TITLE_MAX = 32


def _heading_of(line: str) -> tuple[int, int, str, str] | None:
    """(rank, number, numeral as written, rest) when the line starts with an article number."""
    for rank, pattern in enumerate(_HEADINGS):
        m = pattern.match(line)
        if m:
            try:
                n = cn_to_int(m.group(1))
            except ValueError:
                continue
            if n <= 0:
                continue
            return rank, n, m.group(1), m.group(2)
    return None


@dataclass(frozen=True)
class ParsedPassage:
    label: str
    heading: str
    text: str


@dataclass
class _Node:
    rank: int
    label: str
    display: str  # e.g. "二、围绕……夯实工作基础" or "（二）妥善处理依申请公开"
    ancestors: tuple[str, ...]
    lines: list[str] = field(default_factory=list)
    has_body: bool = False
    head_only: bool = False
    children: int = 0


def _split_title(rest: str) -> tuple[str, bool]:
    """The short title after an article number and whether the heading line has body text too."""
    rest = rest.strip()
    if not rest:
        return "", False
    for stop in ("。", ".", "：", ":"):
        idx = rest.find(stop)
        if 0 < idx <= _TITLE_MAX:
            return rest[:idx], idx + 1 < len(rest)
    if len(rest) <= _TITLE_MAX and rest[-1] not in _TERMINAL:
        return rest, False
    return "", True


def _label(stack: Sequence[_Node], rank: int, numeral: str) -> str:
    parent = stack[-1] if stack else None
    base = parent.label if parent else ""
    if rank == 0:
        return numeral
    if rank == 1:
        return f"{base}({numeral})"
    if rank == 2:
        if parent is not None and parent.rank == 0:
            return f"{base}.{numeral}"
        return f"{base}{numeral}"
    return f"{base}({numeral})"


def _preamble_lines(lines: Sequence[str]) -> list[str]:
    """The lines before the first article (a heading numbered 1 of any scheme)."""
    for i, s in enumerate(lines):
        h = _heading_of(s)
        if h is not None and h[1] == 1:
            return list(lines[:i])
    return list(lines)


def _is_trailer(s: str) -> bool:
    """Signature, date and web-page furniture after the last article (short, not a sentence)."""
    return len(s) <= 60 and s[-1] not in _TERMINAL


def _chunks(text: str, max_chars: int) -> list[str]:
    """Split a long passage at sentence ends into parts of at most ~max_chars."""
    if len(text) <= max_chars:
        return [text]
    sentences = [s for s in re.findall(r"[^。！？!?\n]*(?:[。！？!?]+[”’」』]?|\n|$)", text) if s.strip()]
    pieces: list[str] = []
    for s in sentences:
        while len(s) > max_chars:  # one huge sentence: cut at a semicolon or comma, else hard
            cut = max(s.rfind(p, 0, max_chars) for p in "；;，,")
            cut = cut + 1 if cut > max_chars // 3 else max_chars
            pieces.append(s[:cut])
            s = s[cut:]
        pieces.append(s)
    parts: list[str] = []
    current = ""
    for p in pieces:
        if current and len(current) + len(p) > max_chars:
            parts.append(current)
            current = ""
        current += p
    if current:
        if parts and len(current.strip()) < max_chars // 6:
            parts[-1] += current
        else:
            parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def split_passages(text: str, *, max_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> list[ParsedPassage]:
    """Split a policy text into citable passages along its numbering.

    Headings are accepted only in sequence (1 after a new parent, else previous + 1), so a stray
    "1." in page furniture does not open a new article. Heading-only lines become context
    (`heading`) of the passages below them. Text before the first article becomes 印发通知 (a cover
    letter, up to its signature date) and 前言; signature lines after the last article are dropped.
    Passages longer than `max_chars` are split at sentence ends into parts with the same label.
    """
    lines = [c for c in (_clean_line(x) for x in text.splitlines()) if c]
    pre = _preamble_lines(lines)
    body = lines[len(pre) :]
    out: list[ParsedPassage] = []

    # --- text before the first article: cover letter and preface ---------------------------
    cover: list[str] = []
    preface: list[str] = []
    date_seen = False
    for s in pre:
        if parse_cn_date(s) is not None:
            date_seen = True
            continue
        if not (len(s) > 60 or s[-1] in _TERMINAL) or _is_titlelike(s):
            continue  # header furniture: 文件 line, 文号, titles, signature
        if s[-1] in "：:" and len(s) <= 60:
            continue  # addressee line (主送机关)
        (preface if date_seen else cover).append(s)
    if not date_seen:
        cover, preface = [], cover
        idx = max(
            (i for i, s in enumerate(preface) if re.search(r"印发给你们|现予印发|现印发|印发你们", s)),
            default=-1,
        )
        if 0 <= idx < len(preface) - 1:
            cover, preface = preface[: idx + 1], preface[idx + 1 :]
    for label, group in ((COVER_LABEL, cover), (PREFACE_LABEL, preface)):
        if group:
            for part in _chunks(_join(group), max_chars):
                out.append(ParsedPassage(label, "", part))

    # --- numbered articles -----------------------------------------------------------------
    nodes: list[_Node] = []
    stack: list[_Node] = []
    last: dict[int, int] = {}
    fresh: dict[int, bool] = {r: True for r in range(len(_HEADINGS))}
    for s in body:
        h = _heading_of(s)
        accepted = False
        if h is not None:
            rank, n, numeral, rest = h
            prev = last.get(rank, 0)
            accepted = n == prev + 1 or (fresh[rank] and n == 1)
        if h is not None and accepted:
            rank, n, numeral, rest = h
            while stack and stack[-1].rank >= rank:
                stack.pop()
            title, inline = _split_title(rest)
            marker = s[: len(s) - len(rest)].strip() if rest else s.strip()
            node = _Node(
                rank=rank,
                label=_label(stack, rank, numeral),
                display=squash_cjk_spaces(marker + title),
                ancestors=tuple(x.display for x in stack),
                lines=[s],
                has_body=inline,
                head_only=not inline,
            )
            if stack:
                stack[-1].children += 1
            last[rank] = n
            fresh[rank] = False
            for r in range(rank + 1, len(_HEADINGS)):
                fresh[r] = True
            stack.append(node)
            nodes.append(node)
            continue
        if not nodes:
            continue
        nodes[-1].lines.append(s)
        nodes[-1].has_body = True

    if nodes:  # drop signature / page furniture after the last article
        tail = nodes[-1]
        while len(tail.lines) > 1 and _is_trailer(tail.lines[-1]):
            tail.lines.pop()
        tail.has_body = tail.has_body and (len(tail.lines) > 1 or not tail.head_only)

    for node in nodes:
        if not node.has_body and node.children:
            continue  # a heading: context for the articles below it
        if node.head_only and len(node.lines) > 1:
            node_text = node.lines[0] + "\n" + _join(node.lines[1:])
        else:
            node_text = _join(node.lines)
        parts = _chunks(node_text, max_chars)
        for i, part in enumerate(parts):
            context = node.ancestors + ((node.display,) if i > 0 else ())
            out.append(ParsedPassage(node.label, " ".join(context), part))
    return out


@dataclass(frozen=True)
class ParsedPolicy:
    meta: PolicyMeta
    passages: tuple[ParsedPassage, ...]


def parse_policy_text(text: str, *, max_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> ParsedPolicy:
    return ParsedPolicy(extract_metadata(text), tuple(split_passages(text, max_chars=max_chars)))


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRecord:
    id: str
    title: str
    doc_no: str | None
    issuer: str | None
    issued_on: dt.date | None
    status: str
    source_file: str | None
    url: str | None
    seq: int
    passage_count: int

    @property
    def is_current(self) -> bool:
        return self.status not in INACTIVE_STATUSES

    def citation(self, label: str | None = None) -> str:
        return _citation(self.title, self.doc_no, label, self.status)


@dataclass(frozen=True)
class PassageRecord:
    id: int
    policy_id: str
    ordinal: int
    label: str
    heading: str
    text: str


@dataclass(frozen=True)
class PassageHit:
    policy_id: str
    passage_id: int
    label: str
    text: str
    score: float
    title: str
    doc_no: str | None
    status: str
    issuer: str | None
    url: str | None = None
    heading: str = ""

    def citation(self) -> str:
        """《标题》（文号）二(二), with the status appended when the policy is not 有效."""
        return _citation(self.title, self.doc_no, self.label, self.status)


def _citation(title: str, doc_no: str | None, label: str | None, status: str) -> str:
    out = f"《{title}》"
    if doc_no:
        out += f"（{doc_no}）"
    if label:
        out += label
    if status and status != "有效":
        out += f"（该文件{status}）" if status == "已修订" else f"（该文件已{status}）"
    return out


def _record(p: Policy, passage_count: int) -> PolicyRecord:
    return PolicyRecord(
        id=p.id,
        title=p.title,
        doc_no=p.doc_no,
        issuer=p.issuer,
        issued_on=p.issued_on,
        status=p.status,
        source_file=p.source_file,
        url=p.url,
        seq=p.seq,
        passage_count=passage_count,
    )


# ---------------------------------------------------------------------------------------------
# Decoding files
# ---------------------------------------------------------------------------------------------


def decode_policy_bytes(data: bytes, name: str = "文件") -> str:
    """UTF-8 (with or without BOM) or GB18030; empty and binary content raise InvalidInput."""
    if not data.strip():
        raise InvalidInput(f"{name}是空文件，没有可导入的内容。", f"policy file {name!r} is empty")
    if b"\x00" in data[:8192]:
        raise InvalidInput(
            f"{name}不是文本文件（可能是 Word/PDF 等二进制格式），请另存为 .txt 后再导入。",
            f"policy file {name!r} contains NUL bytes (binary)",
        )
    text = decode_text_bytes(data)
    if text is None:
        raise InvalidInput(
            f"{name}的文字编码无法识别，请保存为 UTF-8 或 GB18030 编码的文本文件。",
            f"policy file {name!r} is neither UTF-8 nor GB18030",
        )
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\r\n\t\f")
    if controls > max(8, len(text) // 100):
        raise InvalidInput(
            f"{name}不是文本文件，请另存为 .txt 后再导入。",
            f"policy file {name!r} has {controls} control characters",
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidInput(f"{name}是空文件，没有可导入的内容。", f"policy file {name!r} is blank")
    return text


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


@dataclass
class _Index:
    signature: tuple[int, int]
    active: Matcher
    all: Matcher | None
    passages: dict[str, PassageHit]  # passage id -> hit template (score 0)
    active_ids: frozenset[str]
    records: dict[str, PolicyRecord]  # id, normalised 文号 and title -> record (for the hot path)


class PolicyStore:
    """Policy documents and passages in the database, plus a lazily built passage search index.

    The index follows the store: at most every `refresh_seconds` the version stamp is read; when it
    moved and the policies changed (max seq, count), the index is rebuilt on the next search.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        refresh_seconds: float = 2.0,
        text: TextProcessor | None = None,
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.refresh_seconds = refresh_seconds
        self.max_passage_chars = max_passage_chars
        self._text = text
        self._clock = clock
        self._lock = threading.Lock()
        self._index: _Index | None = None
        self._seen_version = -1
        self._checked_at = 0.0

    # --- import ---------------------------------------------------------------------------------
    def import_text(
        self,
        text: str,
        *,
        id: str | None = None,
        title: str | None = None,
        doc_no: str | None = None,
        issuer: str | None = None,
        issued_on: dt.date | str | None = None,
        status: str = "有效",
        source_file: str | None = None,
        url: str | None = None,
        replace: bool = True,
        by: str = "system",
    ) -> PolicyRecord:
        """Import (or with `replace`, re-import) one policy. Explicit metadata wins over the header."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("政策文件内容为空，无法导入。", "policy text is empty")
        text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
        _check_status(status)
        parsed = parse_policy_text(text, max_chars=self.max_passage_chars)
        meta = parsed.meta
        final_title = squash_cjk_spaces(title) if title and title.strip() else meta.title
        if not final_title:
            raise InvalidInput(
                "无法从文件中识别标题，请在导入时填写文件标题。",
                "policy title not given and not found in header",
            )
        final_title = final_title.strip("《》 ")
        final_doc_no = normalise_doc_no(doc_no) if doc_no and doc_no.strip() else meta.doc_no
        final_issuer = issuer.strip() if issuer and issuer.strip() else meta.issuer
        final_date = _as_date(issued_on) if issued_on else meta.issued_on
        if not parsed.passages:
            raise InvalidInput("文件中没有可引用的正文内容。", "policy text has no passages")
        policy_id = (id or "").strip() or _derive_id(final_title, final_doc_no)
        if len(policy_id) > 64 or not re.fullmatch(r"[\w\-.〔〕()（）]+", policy_id):
            raise InvalidInput(
                "文件编号只能包含字母、数字、汉字、短横线和点，且不超过64个字符。",
                f"bad policy id {policy_id!r}",
            )
        _check_len("标题", final_title, 2000)
        _check_len("文号", final_doc_no, 100)
        _check_len("发文机关", final_issuer, 200)
        _check_len("来源文件", source_file, 300)
        _check_len("链接", url, 500)

        with transaction(self.sessions) as s:
            existing = s.get(Policy, policy_id)
            if existing is not None and not replace:
                raise Conflict(f"文件“{policy_id}”已存在。", f"policy {policy_id} exists and replace=False")
            if final_doc_no:
                other = s.execute(
                    select(Policy.id).where(Policy.doc_no == final_doc_no, Policy.id != policy_id)
                ).scalar_one_or_none()
                if other is not None:
                    raise Conflict(
                        f"文号{final_doc_no}已被文件“{other}”使用。",
                        f"doc_no {final_doc_no} already used by policy {other}",
                    )
            if existing is not None and _same(
                existing,
                parsed.passages,
                text,
                final_title,
                final_doc_no,
                final_issuer,
                final_date,
                status,
                source_file,
                url,
            ):
                return _record(existing, len(parsed.passages))  # re-import of identical content: no change
            seq = bump_version(s)
            if existing is None:
                policy = Policy(id=policy_id)
                s.add(policy)
            else:
                policy = existing
                policy.passages.clear()
                s.flush()
            policy.title = final_title
            policy.doc_no = final_doc_no
            policy.issuer = final_issuer
            policy.issued_on = final_date
            policy.status = status
            policy.source_file = source_file
            policy.url = url
            policy.text = text
            policy.seq = seq
            policy.imported_at = utcnow()
            policy.updated_by = by
            for i, p in enumerate(parsed.passages):
                policy.passages.append(Passage(ordinal=i, label=p.label, heading=p.heading, text=p.text))
            s.flush()
            record = _record(policy, len(parsed.passages))
        log.info("policy imported id=%s passages=%d by=%s seq=%d", policy_id, record.passage_count, by, seq)
        return record

    def import_file(self, path: str | Path, **meta: Any) -> PolicyRecord:
        """Import a .txt / .md file (UTF-8, UTF-8 with BOM or GB18030)."""
        p = Path(path)
        if p.suffix.lower() not in ALLOWED_SUFFIXES:
            raise InvalidInput(
                f"不支持的文件类型“{p.suffix or '无扩展名'}”，请上传 .txt 或 .md 文本文件。",
                f"policy file {p.name!r} has unsupported suffix",
            )
        try:
            size = p.stat().st_size
            if size > MAX_FILE_BYTES:
                raise InvalidInput(
                    f"文件过大（{size // 1024} KB），单个政策文件不能超过 {MAX_FILE_BYTES // 1024 // 1024} MB。",
                    f"policy file {p.name!r} too large: {size} bytes",
                )
            data = p.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"找不到文件“{p.name}”。", f"policy file {p} not found") from exc
        except IsADirectoryError as exc:
            raise InvalidInput(f"“{p.name}”是目录，不是文件。", f"policy path {p} is a directory") from exc
        text = decode_policy_bytes(data, f"文件“{p.name}”")
        meta.setdefault("source_file", p.name)
        return self.import_text(text, **meta)

    # --- reading --------------------------------------------------------------------------------
    def get(self, policy_id: str) -> PolicyRecord | None:
        with self.sessions() as s:
            p = s.get(Policy, policy_id)
            return None if p is None else _record(p, self._count(s, p.id))

    def find(self, id_or_doc_no: str | None) -> PolicyRecord | None:
        """By id, then by 文号 (bracket style does not matter), then by exact title (《》 optional)."""
        key = (id_or_doc_no or "").strip()
        if not key:
            return None
        with self.sessions() as s:
            p = s.get(Policy, key) if len(key) <= 64 else None
            if p is None:
                p = s.execute(
                    select(Policy).where(Policy.doc_no == normalise_doc_no(key)).limit(1)
                ).scalar_one_or_none()
            if p is None:
                p = s.execute(
                    select(Policy).where(Policy.title == squash_cjk_spaces(key.strip("《》 "))).limit(1)
                ).scalar_one_or_none()
            return None if p is None else _record(p, self._count(s, p.id))

    def cached(self, id_or_doc_no: str | None) -> PolicyRecord | None:
        """Like `find`, from the in-memory copy that follows the store (at most `refresh_seconds`
        old): the answering hot path uses it instead of querying the database per hit."""
        key = (id_or_doc_no or "").strip()
        if not key:
            return None
        records = self._current_index().records
        return (
            records.get(key)
            or records.get(normalise_doc_no(key))
            or records.get(squash_cjk_spaces(key.strip("《》 ")))
        )

    def list(self) -> list[PolicyRecord]:
        with self.sessions() as s:
            counts: dict[str, int] = {
                str(pid): int(n)
                for pid, n in s.execute(select(Passage.policy_id, func.count()).group_by(Passage.policy_id))
            }
            rows = s.execute(select(Policy).order_by(Policy.issued_on.desc(), Policy.id)).scalars().all()
            return [_record(p, int(counts.get(p.id, 0))) for p in rows]

    def passages(self, policy_id: str) -> builtins.list[PassageRecord]:
        with self.sessions() as s:
            if s.get(Policy, policy_id) is None:
                raise NotFound(f"找不到文件“{policy_id}”。", f"policy {policy_id} not found")
            rows = (
                s.execute(select(Passage).where(Passage.policy_id == policy_id).order_by(Passage.ordinal))
                .scalars()
                .all()
            )
            return [PassageRecord(r.id, r.policy_id, r.ordinal, r.label, r.heading, r.text) for r in rows]

    @staticmethod
    def _count(s: Session, policy_id: str) -> int:
        return int(s.execute(select(func.count()).where(Passage.policy_id == policy_id)).scalar_one())

    # --- status ---------------------------------------------------------------------------------
    def set_status(self, policy_id: str, status: str, *, by: str) -> PolicyRecord:
        _check_status(status)
        with transaction(self.sessions) as s:
            p = s.get(Policy, policy_id)
            if p is None:
                raise NotFound(f"找不到文件“{policy_id}”。", f"policy {policy_id} not found")
            old = p.status
            if old != status:
                p.status = status
                p.seq = bump_version(s)
                p.updated_by = by
            record = _record(p, self._count(s, p.id))
        if old != status:
            log.info("policy status id=%s %s->%s by=%s", policy_id, old, status, by)
        return record

    def is_current(self, id_or_doc_no: str) -> bool | None:
        """None for an unknown policy, False for 失效/废止, True for 有效/已修订."""
        rec = self.find(id_or_doc_no)
        return None if rec is None else rec.is_current

    def faq_validity(
        self,
        source_policy: str | None,
        valid_from: dt.date | dt.datetime | None,
        valid_to: dt.date | dt.datetime | None,
        today: dt.date,
    ) -> tuple[bool, str | None]:
        """Whether an FAQ may be given as a current answer, with the Chinese reason when not.

        A source policy that is 失效/废止 or a date outside [valid_from, valid_to] makes it not
        current. An unknown source policy does not (the FAQ may cite a document not imported); a
        policy marked 已修订 stays current with the note 来源文件已修订.
        """
        rec = self.cached(source_policy) if source_policy else None
        if rec is not None and rec.status in INACTIVE_STATUSES:
            return False, "来源文件已废止" if rec.status == "废止" else "来源文件已失效"
        start = _day(valid_from)
        end = _day(valid_to)
        if end is not None and today > end:
            return False, f"已超过有效期（{end.isoformat()}）"
        if start is not None and today < start:
            return False, f"尚未生效（{start.isoformat()}起施行）"
        if rec is not None and rec.status == "已修订":
            return True, "来源文件已修订"
        return True, None

    # --- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int = 3, *, include_inactive: bool = False) -> builtins.list[PassageHit]:
        """Best passages for a question; passages of 失效/废止 policies only with include_inactive."""
        if not isinstance(query, str) or not query.strip():
            return []
        k = max(1, min(int(k), 50))
        index = self._current_index()
        if include_inactive:
            with self._lock:
                if index.all is None:
                    index.all = self._matcher(index.passages.values())
                matcher = index.all
        else:
            matcher = index.active
        out: list[PassageHit] = []
        for h in matcher.search(query, k=k * 4):
            tpl = index.passages.get(h.faq_id)
            if tpl is None:
                continue
            if not include_inactive and tpl.status in INACTIVE_STATUSES:
                continue
            out.append(_with_score(tpl, h.score))
        if len(out) > 1:
            # Coverage scores tie often (every passage on 依申请公开 covers the same query words):
            # among equal scores, prefer the passage where the query's words recur most densely.
            words = [w for w in matcher.text.tokens(query) if len(w) >= 2]
            out.sort(key=lambda p: (-round(p.score, 3), -_density(words, p.heading + p.text), p.passage_id))
        return out[:k]

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the passage index now if the policies changed; True when it was rebuilt."""
        before = self._index
        self._current_index(force=force)
        return self._index is not before

    def _current_index(self, *, force: bool = False) -> _Index:
        now = self._clock()
        with self._lock:
            index = self._index
            if index is not None and not force and now - self._checked_at < self.refresh_seconds:
                return index
            self._checked_at = now
            with self.sessions() as s:
                try:
                    version = current_version(s)
                except SQLAlchemyError as exc:  # database unreachable: keep answering from memory
                    if index is None or force:
                        raise
                    log.warning("policy index refresh skipped: %s", type(exc).__name__)
                    return index
                if index is not None and not force and version == self._seen_version:
                    return index
                sig_row = s.execute(
                    select(func.coalesce(func.max(Policy.seq), 0), func.count(Policy.id))
                ).one()
                signature = (int(sig_row[0]), int(sig_row[1]))
                self._seen_version = version
                if index is not None and not force and signature == index.signature:
                    return index
                rows = s.execute(
                    select(Passage, Policy)
                    .join(Policy, Passage.policy_id == Policy.id)
                    .order_by(Policy.id, Passage.ordinal)
                ).all()
                templates: dict[str, PassageHit] = {}
                for pas, pol in rows:
                    templates[str(pas.id)] = PassageHit(
                        policy_id=pol.id,
                        passage_id=pas.id,
                        label=pas.label,
                        text=pas.text,
                        score=0.0,
                        title=pol.title,
                        doc_no=pol.doc_no,
                        status=pol.status,
                        issuer=pol.issuer,
                        url=pol.url,
                        heading=pas.heading,
                    )
                counts: dict[str, int] = {}
                for t in templates.values():
                    counts[t.policy_id] = counts.get(t.policy_id, 0) + 1
                records: dict[str, PolicyRecord] = {}
                for pol in s.execute(select(Policy).order_by(Policy.id)).scalars():
                    rec = _record(pol, counts.get(pol.id, 0))
                    for key in (
                        squash_cjk_spaces(pol.title),
                        normalise_doc_no(pol.doc_no) if pol.doc_no else "",
                    ):
                        if key:
                            records.setdefault(key, rec)
                    records[pol.id] = rec
            active = [t for t in templates.values() if t.status not in INACTIVE_STATUSES]
            self._index = _Index(
                signature=signature,
                active=self._matcher(active),
                all=None,
                passages=templates,
                active_ids=frozenset(str(t.passage_id) for t in active),
                records=records,
            )
            log.info("policy passage index built passages=%d active=%d", len(templates), len(active))
            return self._index

    def _matcher(self, passages: Iterable[PassageHit]) -> Matcher:
        from knowledge.matcher import IndexEntry, Matcher

        if self._text is None:
            from knowledge.text import TextProcessor

            self._text = TextProcessor()
        m = Matcher(self._text, mode="passage")
        m.build(
            IndexEntry(faq_id=str(p.passage_id), question=(p.heading + "\n" + p.text).strip())
            for p in passages
        )
        return m


def _density(words: Sequence[str], text: str) -> float:
    """Saturated term frequency of the query's words, mildly normalised by passage length."""
    if not words:
        return 0.0
    tf = sum(min(text.count(w), 3) for w in set(words))
    return tf / (1.0 + len(text) / 1000.0)


def _with_score(tpl: PassageHit, score: float) -> PassageHit:
    from dataclasses import replace

    return replace(tpl, score=score)


def _same(
    p: Policy,
    passages: Sequence[ParsedPassage],
    text: str,
    title: str,
    doc_no: str | None,
    issuer: str | None,
    issued_on: dt.date | None,
    status: str,
    source_file: str | None,
    url: str | None,
) -> bool:
    if (p.text, p.title, p.doc_no, p.issuer, p.issued_on, p.status, p.source_file, p.url) != (
        text,
        title,
        doc_no,
        issuer,
        issued_on,
        status,
        source_file,
        url,
    ):
        return False
    return [(x.label, x.heading, x.text) for x in p.passages] == [
        (x.label, x.heading, x.text) for x in passages
    ]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(
            f"文件状态“{status}”无效，只能是：{'、'.join(STATUSES)}。", f"invalid policy status {status!r}"
        )


def _check_len(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{name}过长（最多{limit}个字符）。", f"policy {name} longer than {limit}")


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    parsed = parse_cn_date(s)
    if parsed is not None:
        return parsed
    try:
        return dt.date.fromisoformat(s.replace("/", "-").replace(".", "-"))
    except ValueError as exc:
        raise InvalidInput(
            f"成文日期“{s}”无法识别，请写成 2023-03-31 或 2023年3月31日。", f"bad issued_on {s!r}"
        ) from exc


def _day(value: dt.date | dt.datetime | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _derive_id(title: str, doc_no: str | None) -> str:
    digest = hashlib.sha1(f"{doc_no or ''}|{title}".encode()).hexdigest()[:12]
    return f"policy-{digest}"
