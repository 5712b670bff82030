"""Detection and masking of personal data in citizen text, wherever it is shown or logged, and the
cleaning of citizen text before it is scanned or stored.

`clean_text` removes invisible Unicode format characters (category Cf: zero-width space/joiner,
BOM, soft hyphen, bidi embeddings/overrides/isolates, plus variation selectors and the other
default-ignorable fillers) that could split a number so that no detector sees it; line breaks and
visible spaces stay. The ticket service cleans every text it accepts with it, and `mask` cleans
before it scans, so masked text never carries such characters either.

Finds mainland mobile numbers (also +86/86, spaced or dashed), 18-digit resident ID numbers with a
valid GB 11643-1999 checksum (15-digit old IDs only right after an ID keyword), ID-shaped numbers
whose checksum is wrong (kind "id_like": a mistyped ID still identifies a person, so it is masked
too), bank card numbers (13-19 digits passing Luhn, whole or in groups of 4), emails, fixed-line
phones with an area code, and street addresses (the detail after the district/town is masked).
IDs and cards are found per number token: text is split into chains of digit groups joined by one
space or hyphen, and from every group the longest run of whole groups that is an ID or a card is
taken, so a number right after another number and a space is scanned on its own. Detectors favour
precision: document numbers (青人社〔2023〕11号), dates, years, counts (20个工作日), hotlines
(12345, 400-/800- numbers) and ticket numbers (LY20261123-0007) are left alone; so are long numbers
that are neither an ID nor a card (order numbers), which is why `long_digit_run` exists for texts
that are about to be made public. Full-width digits are recognised. `MaskingFilter` applies the
same masking to log records.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

PiiKind = Literal["mobile", "id_number", "id_like", "bank_card", "email", "landline", "address"]
ALL_KINDS: tuple[PiiKind, ...] = (
    "email",
    "id_number",
    "id_like",
    "bank_card",
    "mobile",
    "landline",
    "address",
)  # priority order: earlier kinds win where matches overlap


@dataclass(frozen=True)
class PiiMatch:
    kind: PiiKind
    start: int
    end: int
    value: str


# Full-width ASCII (０-９, ＠, －, ＋ ...) and the ideographic space map 1:1 to ASCII, so spans in the
# translated text are spans in the original.
_WIDE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _ascii(text: str) -> str:
    return text.translate(_WIDE)


# --- cleaning --------------------------------------------------------------------------------

# Invisible characters that are not category Cf but are default-ignorable all the same: combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation
# selectors (also the supplementary ones).
_IGNORABLE = (
    0x034F,
    0x115F,
    0x1160,
    0x17B4,
    0x17B5,
    0x3164,
    0xFFA0,
    *range(0x180B, 0x1810),
    *range(0xFE00, 0xFE10),
    *range(0xE0100, 0xE01F0),
)
# Every Cf character lies in planes 0, 1 and 14 (the others hold ideographs and private use).
_CF_PLANES = (range(0x80, 0x20000), range(0xE0000, 0xE1000))


@functools.cache
def _invisible() -> re.Pattern[str]:
    """One invisible character (the pattern is built once, in about 30 ms)."""
    codes = sorted(
        {*(c for plane in _CF_PLANES for c in plane if unicodedata.category(chr(c)) == "Cf"), *_IGNORABLE}
    )
    ranges: list[list[int]] = []
    for c in codes:  # as ranges: a class of single characters is scanned one by one
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


def clean_text(text: str) -> str:
    """`text` without invisible format characters (Unicode category Cf: zero-width space, joiners,
    BOM, soft hyphen, LRM/RLM, the bidi embeddings, overrides and isolates U+202A-202E and
    U+2066-2069 ...) and other default-ignorable fillers. Line breaks, tabs and visible spaces
    are kept. The one cleaning of citizen text: apply it before scanning and before storing."""
    if text.isascii():  # every such character is outside ASCII
        return text
    return _invisible().sub("", text)


def _view(text: str) -> tuple[str, list[int]]:
    """The text the detectors scan (cleaned, full-width folded to ASCII) and, for each of its
    characters plus the end, the index of the same character in `text`."""
    if text.isascii() or not _invisible().search(text):
        return _ascii(text), list(range(len(text) + 1))
    invisible = _invisible()
    index = [i for i, ch in enumerate(text) if not invisible.match(ch)]
    index.append(len(text))
    return _ascii(clean_text(text)), index


# --- validators ------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# First two digits of mainland province codes, plus 71 (Taiwan), 81/82 (Hong Kong, Macao), 83 (the
# code on residence permits for Taiwan residents), 91 (foreigners' permanent residence since 2023).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82 83 91".split()
)


def _plausible_birth(yyyymmdd: str) -> bool:
    try:
        born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1900 <= born.year <= dt.date.today().year


def _id_shape(s: str) -> bool:
    """Area code and birth date of an 18-character ID are plausible (checksum not checked)."""
    return (
        len(s) == 18
        and s[:17].isdigit()
        and s[17] in "0123456789Xx"
        and s[:2] in _PROVINCES
        and _plausible_birth(s[6:14])
    )


def id_checksum(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_id_number(s: str) -> bool:
    """True for an 18-digit resident ID with plausible area and birth date and a valid checksum."""
    s = _compact(s)
    return _id_shape(s) and id_checksum(s[:17]) == s[17].upper()


def _valid_old_id(s: str) -> bool:
    return len(s) == 15 and s.isdigit() and s[:2] in _PROVINCES and _plausible_birth("19" + s[6:12])


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# --- detectors -------------------------------------------------------------------------------

# A mobile number: no digit or "+" right before it, no digit (or dash and digit) right after it.
_MOBILE = re.compile(
    r"(?<![0-9+])"
    r"(?:(?:\+|00)?86[\s-]?|[(]\+?86[)]\s?)?"
    r"(1[3-9][0-9](?:[\s-]?[0-9]{4}){2})"
    r"(?![0-9]|-[0-9])"
)
_OLD_ID = re.compile(r"(?:身份证|证件|身份号码|公民身份)[^0-9\n]{0,8}?(?<![0-9])([0-9]{15})(?![0-9A-Za-z])")
# A chain of number groups joined by one space (not a line break) or one hyphen/dash: the unit in
# which IDs and cards are looked for, group by group.
_SEP = r"(?:[^\S\r\n]|[-\u2010-\u2015\u2212])"
_GROUP = re.compile(r"[0-9]+[Xx]?")
_CHAIN = re.compile(rf"(?<![0-9])[0-9]+[Xx]?(?:{_SEP}[0-9]+[Xx]?)*")
_SEPARATORS = re.compile(_SEP)
_CARD_DIGITS = range(13, 20)
_CHAIN_KINDS = frozenset({"id_number", "id_like", "bank_card"})
# No lookbehind on purpose: the leftmost, longest local part wins, so text glued to an email address
# ("电话13800000000a@qq.com") is masked together with it.
_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
    r"(?![A-Za-z@])"
)
# Area code 010, 02x or 0[3-9]xx, then a 7-8 digit local number and an optional extension. Hotlines
# (12345, 95xxx) and 400/800 numbers have no leading 0 and are public anyway: not matched.
_LANDLINE = re.compile(
    r"(?<![0-9])(?:[(]\s*(010|02[0-9]|0[3-9][0-9]{2})\s*[)]\s?|(010|02[0-9]|0[3-9][0-9]{2})[\s-]?)"
    r"([1-9][0-9]{6,7})(?:\s?(?:-|转|ext\.?)\s?[0-9]{1,5})?(?![0-9])"
)

_CN = r"\u4e00-\u9fff"
_ADMIN = (
    rf"(?:[{_CN}]{{2,8}}?(?:省|自治区|特别行政区))?"
    rf"(?:[{_CN}]{{1,8}}?(?:市|自治州|地区|盟))?"
    rf"(?:[{_CN}]{{1,8}}?(?:区|县|旗|市))?"
    rf"(?:[{_CN}]{{1,8}}?(?:镇|乡|街道))?"
)
_NUM = r"[0-9一二三四五六七八九十百零〇甲乙丙丁]+(?:-[0-9]+)*"
_UNIT = r"(?:号楼|号院|号|弄|栋|幢|座|单元|楼|层|室|户|组)"
_PLACE = r"(?:路|街|大街|大道|巷|弄|胡同|村|社区|小区|花园|公寓|大厦|新村|家园|苑|广场|园区|工业园)"
_ADDRESS = re.compile(
    rf"(?P<admin>{_ADMIN})"
    rf"(?P<detail>(?:[{_CN}][{_CN}A-Za-z0-9]{{0,11}}?{_PLACE})"
    rf"(?:{_NUM}{_UNIT}|[{_CN}]{{1,8}}?{_PLACE})*"
    rf"{_NUM}{_UNIT}(?:[{_CN}A-Za-z]{{0,8}}?{_NUM}{_UNIT}|[0-9]{{3,4}}(?![0-9]))*)"
)
# A numeral right before a unit: the same test as `_NUM + _UNIT` without its backtracking.
_HAS_UNIT = re.compile(r"[0-9一二三四五六七八九十百零〇甲乙丙丁]" + _UNIT)
_PLACE_RE = re.compile(_PLACE)
# Words that commonly lead into an address inside a sentence; trimmed off the reported span.
_LEAD_IN = re.compile(
    r"(?:.*(?:住在|住址是|住址为|住址|地址是|地址为|地址|家住|家在|住|位于|寄到|寄往|送到|搬到|在|是|为|：|:))"
)


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def _compact(s: str) -> str:
    """A number as written without its group separators (and invisible characters)."""
    return _SEPARATORS.sub("", _ascii(clean_text(s)).strip())


def _classify(groups: list[str], kinds: set[str]) -> PiiKind | None:
    """What the whole groups, read as one number, are: an ID, a card, an ID-shaped number, or None."""
    number = "".join(groups)
    id_shaped = _id_shape(number)  # 18 characters, plausible area code and birth date
    if id_shaped and id_checksum(number[:17]) == number[17].upper():
        return "id_number" if "id_number" in kinds else None
    card = (
        len(number) in _CARD_DIGITS
        and all(len(g) % 4 == 0 for g in groups[:-1])  # whole or grouped by 4 (the last group shorter)
        and number.isdigit()
        and luhn_ok(number)
        and not _MOBILE.fullmatch(number)  # "8613812345678" is a mobile number with the country code
    )
    if card:
        return "bank_card" if "bank_card" in kinds else None
    if id_shaped:
        return "id_like" if "id_like" in kinds else None
    return None


def _chain_spans(t: str, kinds: set[str]) -> Iterable[tuple[PiiKind, int, int]]:
    """IDs and cards in `t`: in every chain of number groups, from each group on, the longest run
    of whole groups that is one (then on after it). No group hides the next one."""
    shortest, longest = min(_CARD_DIGITS), max(_CARD_DIGITS)  # an ID (18) is within these too
    for chain in _CHAIN.finditer(t):
        if len(chain.group()) < shortest:
            continue
        groups = [
            (g.group(), chain.start() + g.start(), chain.start() + g.end())
            for g in _GROUP.finditer(chain.group())
        ]
        i = 0
        while i < len(groups):
            runs: list[int] = []  # candidate last groups, shortest first
            size = 0
            by_four = True  # the groups before j are all of 4 (8, ...) digits: a card's grouping
            for j in range(i, len(groups)):
                size += len(groups[j][0])
                if size > longest:
                    break
                if size >= shortest and (by_four or size == 18):
                    runs.append(j)
                by_four = by_four and len(groups[j][0]) % 4 == 0
            for j in reversed(runs):
                kind = _classify([g[0] for g in groups[i : j + 1]], kinds)
                if kind is not None:
                    yield kind, groups[i][1], groups[j][2]
                    i = j
                    break
            i += 1


def _address_spans(t: str) -> Iterable[tuple[int, int]]:
    for m in _ADDRESS.finditer(t):
        start = m.start()
        if m.group("admin"):
            keep_end = m.end("admin")
        else:
            place = _PLACE_RE.search(t, m.start("detail"), m.end())
            keep_end = place.end() if place else m.start("detail")
        # The lazy name groups may have swallowed words before the address ("我住在上海市..."):
        # start after the last lead-in word found before the part that is kept.
        lead = _LEAD_IN.match(t, start, keep_end)
        if lead and lead.end() < keep_end:
            start = lead.end()
        yield start, m.end()


def _scan(t: str, kinds: set[str]) -> list[PiiMatch]:
    """Every candidate in the scan view `t` (overlaps allowed; `find_pii` chooses)."""
    found: list[PiiMatch] = []

    def add(kind: PiiKind, start: int, end: int) -> None:
        found.append(PiiMatch(kind, start, end, t[start:end]))

    if "email" in kinds:
        for m in _EMAIL.finditer(t):
            add("email", m.start(), m.end())
    if kinds & _CHAIN_KINDS:
        for kind, start, end in _chain_spans(t, kinds):
            add(kind, start, end)
    if "id_number" in kinds:
        for m in _OLD_ID.finditer(t):
            if _valid_old_id(m.group(1)):
                add("id_number", m.start(1), m.end(1))
    if "mobile" in kinds:
        for m in _MOBILE.finditer(t):
            add("mobile", m.start(), m.end())
    if "landline" in kinds:
        for m in _LANDLINE.finditer(t):
            add("landline", m.start(), m.end())
    if "address" in kinds and _HAS_UNIT.search(t):
        for start, end in _address_spans(t):
            add("address", start, end)
    return found


def _shorten_address(t: str, match: PiiMatch, limit: int) -> PiiMatch:
    m = _ADDRESS.match(t, match.start, limit) if limit > match.start else None
    end = m.end() if m else match.start
    return PiiMatch("address", match.start, end, t[match.start : end])


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Personal data in `text`, non-overlapping, in text order (earlier kinds in ALL_KINDS win).

    Scanned with invisible format characters removed; spans and values refer to `text` itself (a
    value keeps the invisible characters written inside it).
    """
    wanted = set(ALL_KINDS if kinds is None else kinds)
    unknown = wanted - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown PII kinds: {sorted(unknown)}")
    t, index = _view(text)
    priority = {k: i for i, k in enumerate(ALL_KINDS)}
    chosen: list[PiiMatch] = []
    for match in sorted(_scan(t, wanted), key=lambda m: (priority[m.kind], m.start, -m.end)):
        clash = [c for c in chosen if match.start < c.end and c.start < match.end]
        if clash and match.kind == "address":
            # An address running into a phone number ("…45号13812345678"): keep the part before it.
            match = _shorten_address(t, match, min(c.start for c in clash))
            clash = [c for c in chosen if match.start < c.end and c.start < match.end]
        if not clash and match.end > match.start:
            chosen.append(match)
    spans = [(m.kind, index[m.start], index[m.end - 1] + 1) for m in sorted(chosen, key=lambda m: m.start)]
    return [PiiMatch(kind, start, end, text[start:end]) for kind, start, end in spans]


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


def mask_value(kind: str, value: str) -> str:
    """The masked form of one detected value."""
    value = clean_text(value)
    v = _ascii(value)
    if kind == "mobile":
        d = _digits(v)[-11:]
        return f"{d[:3]}****{d[-4:]}"
    if kind in ("id_number", "id_like"):
        s = _compact(v)
        return f"{s[:6]}{'*' * (len(s) - 10)}{s[-4:]}" if len(s) > 10 else "*" * len(s)
    if kind == "bank_card":
        return f"**** **** **** {_digits(v)[-4:]}"
    if kind == "email":
        local, _, domain = v.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "landline":
        m = _LANDLINE.fullmatch(v.strip())
        area = (m.group(1) or m.group(2)) if m else ""
        local = m.group(3) if m else _digits(v)
        return f"{area}-****{local[-4:]}" if area else f"****{local[-4:]}"
    if kind == "address":
        m = _ADDRESS.search(v)
        if m is None:
            return "****"
        if m.group("admin"):
            cut = m.end("admin")  # keep province/city/district/town, mask the rest
        else:
            place = _PLACE_RE.search(v, m.start("detail"))  # keep the road or community name
            cut = place.end() if place else m.start("detail")
        return value[:cut] + "****"
    raise ValueError(f"unknown PII kind: {kind}")


_MAX_PASSES = 5


def _mask_once(text: str, kinds: Iterable[str] | None) -> str:
    out: list[str] = []
    pos = 0
    for m in find_pii(text, kinds):
        out.append(text[pos : m.start])
        out.append(mask_value(m.kind, m.value))
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


def mask(text: str, kinds: Iterable[str] | None = None) -> str:
    """`text`, cleaned (`clean_text`), with every detected value replaced by its masked form.

    Repeated until nothing more is found (values glued together, e.g. an email running into a phone
    number, can reveal a second value only once the first is masked), so the result contains no
    detectable personal data and masking is idempotent.
    """
    text = clean_text(text)
    wanted = None if kinds is None else tuple(kinds)
    for _ in range(_MAX_PASSES):
        masked = _mask_once(text, wanted)
        if masked == text:
            break
        text = masked
    return text


# What `mask` leaves of a value (138****5678, z***@x.cn, 370202********1234, 香港中路****), with
# the road or community name written right before it: removed whole by `remove_pii`.
_LABEL = (
    r"(?:(?:我的|本人的?|我家的?|我)?(?:联系电话|电话号码|电话|手机号码|手机号|手机|联系方式|身份证号码|身份证号|"
    r"身份证|证件号|银行卡号|银行卡|卡号|邮箱|住址|地址|家住在|家住|住在|家在)(?:是|为|：|:)?\s*)"
)
_LABEL_END = re.compile(_LABEL + "$")
_MASKED = re.compile(
    rf"{_LABEL}?(?:{_ADMIN})(?:[{_CN}0-9]{{0,12}}?{_PLACE})?[0-9A-Za-z@._\-]*\*{{2,}}[0-9A-Za-z@._\-]*(?:\s*\*+)*"
)
_LEFTOVER = re.compile(r"([，,。；;：:、\s])[，,。；;：:、\s]+")


def remove_pii(text: str) -> str:
    """`text` with personal data left out rather than starred: every detected value (and what an
    earlier `mask` left of one) is removed, then doubled punctuation and spaces are tidied. For texts
    that become public knowledge (an FAQ drafted from a ticket, a learned phrasing)."""
    text = clean_text(text)
    for _ in range(_MAX_PASSES):
        found = find_pii(text)
        if not found:
            break
        out: list[str] = []
        pos = 0
        for m in found:
            out.append(_LABEL_END.sub("", text[pos : m.start]))
            pos = m.end
        out.append(text[pos:])
        text = "".join(out)
    text = _MASKED.sub("", text)
    text = _LEFTOVER.sub(r"\1", text)
    return text.strip(" \t，,；;：:、")


def normalise_phone(s: str) -> str | None:
    """A contact field as "13812345678" (mobile) or "021-12345678[-ext]" (fixed line), else None."""
    t = _ascii(clean_text(s)).strip()
    m = _MOBILE.fullmatch(t)
    if m and len(_digits(m.group(1))) == 11:
        return _digits(m.group(1))
    m2 = _LANDLINE.fullmatch(t)
    if m2:
        area = m2.group(1) or m2.group(2)
        ext = re.search(r"(?:-|转|ext\.?)\s?([0-9]{1,5})$", t[m2.end(3) :])
        return f"{area}-{m2.group(3)}" + (f"-{ext.group(1)}" if ext else "")
    return None


# --- public texts ----------------------------------------------------------------------------

PUBLIC_DIGIT_RUN: Final = 15
# Digits (any script's decimal digits, full-width included) joined by nothing, one space (not a
# line break) or one hyphen/dash: how a reader sees one number.
_DIGIT_RUN = re.compile(rf"\d(?:{_SEP}?\d)*")


def long_digit_run(text: str, min_digits: int = PUBLIC_DIGIT_RUN) -> str | None:
    """The first number in `text` (read without invisible characters, groups joined by one space
    or hyphen) with at least `min_digits` digits, else None. Masking leaves long numbers that are
    neither an ID nor a card alone; a text that still shows one must not be made public."""
    t = clean_text(text)
    for m in _DIGIT_RUN.finditer(t):
        if sum(ch.isdecimal() for ch in m.group()) >= min_digits:
            return m.group()
    return None


# --- logging ---------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else was passed in `extra=` and is masked if a string.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class MaskingFilter(logging.Filter):
    """Masks personal data in a record's message, arguments, extra fields and traceback text."""

    def __init__(self, name: str = "", kinds: Iterable[str] | None = None) -> None:
        super().__init__(name)
        self.kinds = tuple(ALL_KINDS if kinds is None else kinds)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad format args: keep the raw parts, masked
            message = f"{record.msg} {record.args!r}"
        record.msg = mask(message, self.kinds)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, self.kinds)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, self.kinds)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, mask(value, self.kinds))
        return True


def install_log_masking(logger: logging.Logger | None = None) -> MaskingFilter:
    """Mask every record that `logger` (default: the root logger) and its handlers emit.

    Logger filters do not see records propagated from child loggers, so the filter is put on each
    of the logger's handlers as well; call again after adding handlers (it is idempotent).
    """
    target = logger if logger is not None else logging.getLogger()
    existing = next((f for f in target.filters if isinstance(f, MaskingFilter)), None)
    flt = existing or MaskingFilter()
    if existing is None:
        target.addFilter(flt)
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
