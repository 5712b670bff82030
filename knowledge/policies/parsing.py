"""Policy text parsing, free of any database: this module owns turning the text of a policy
document (plain text or markdown; bytes in UTF-8 / UTF-8-BOM / GB18030 via `decode_policy_bytes`)
into the metadata a citation needs (title, 文号, 发文机关, 成文日期, read from the document header) and
into citable passages split along its numbered article structure (一、 / （一） / 1. / （1）), each
labelled with its path (二(二), 二.4, 三(二)1), plus the Chinese numeral, date and 文号 helpers these
rest on. It imports no SQLAlchemy; the store (`knowledge.policies.store`) keeps the result.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.errors import InvalidInput
from knowledge.text import decode_text_bytes

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
