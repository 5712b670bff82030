"""Detection and masking of personal data in citizen text, wherever it is shown or logged.

Finds mainland mobile numbers (also +86/86, spaced or dashed), 18-digit resident ID numbers with a
valid GB 11643-1999 checksum (15-digit old IDs only right after an ID keyword), ID-shaped numbers
whose checksum is wrong (kind "id_like": a mistyped ID still identifies a person, so it is masked
too), bank card numbers (16-19 digits passing Luhn), emails, fixed-line phones with an area code,
and street addresses (the detail after the district/town is masked). Detectors favour precision:
document numbers (青人社〔2023〕11号), dates, years, counts (20个工作日), hotlines (12345,
400-/800- numbers) and ticket numbers (LY20261123-0007) are left alone. Full-width digits are
recognised. `MaskingFilter` applies the same masking to log records.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PiiKind = Literal["mobile", "id_number", "id_like", "bank_card", "email", "landline", "address"]
ALL_KINDS: tuple[PiiKind, ...] = (
    "email", "id_number", "id_like", "bank_card", "mobile", "landline", "address",
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
        len(s) == 18 and s[:17].isdigit() and s[17] in "0123456789Xx"
        and s[:2] in _PROVINCES and _plausible_birth(s[6:14])
    )


def id_checksum(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_id_number(s: str) -> bool:
    """True for an 18-digit resident ID with plausible area and birth date and a valid checksum."""
    s = _ascii(s).strip().replace(" ", "")
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

_NOT_DIGIT_BEFORE = r"(?<![0-9])(?<![0-9][-\s])"
_NOT_DIGIT_AFTER = r"(?![0-9]|[-\s]?[0-9])"

_MOBILE = re.compile(
    r"(?<![0-9+])(?<![0-9]-)"
    r"(?:(?:\+|00)?86[\s-]?|[(]\+?86[)]\s?)?"
    r"(1[3-9][0-9](?:[\s-]?[0-9]{4}){2})"
    r"(?![0-9]|-[0-9])"
)
_ID18 = re.compile(
    _NOT_DIGIT_BEFORE + r"([0-9]{6}\s?[0-9]{8}\s?[0-9]{3}(?:[0-9](?![0-9])|[Xx]))"
)
_OLD_ID = re.compile(
    r"(?:身份证|证件|身份号码|公民身份)[^0-9\n]{0,8}?(?<![0-9])([0-9]{15})(?![0-9A-Za-z])"
)
_CARD = re.compile(
    _NOT_DIGIT_BEFORE + r"([0-9]{4}(?:[\s-]?[0-9]{4}){3}(?:[\s-]?[0-9]{1,3})?)" + _NOT_DIGIT_AFTER
)
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
_PLACE = (
    r"(?:路|街|大街|大道|巷|弄|胡同|村|社区|小区|花园|公寓|大厦|新村|家园|苑|广场|园区|工业园)"
)
_ADDRESS = re.compile(
    rf"(?P<admin>{_ADMIN})"
    rf"(?P<detail>(?:[{_CN}][{_CN}A-Za-z0-9]{{0,11}}?{_PLACE})"
    rf"(?:{_NUM}{_UNIT}|[{_CN}]{{1,8}}?{_PLACE})*"
    rf"{_NUM}{_UNIT}(?:[{_CN}A-Za-z]{{0,8}}?{_NUM}{_UNIT}|[0-9]{{3,4}}(?![0-9]))*)"
)
_HAS_UNIT = re.compile(_NUM + _UNIT)
_PLACE_RE = re.compile(_PLACE)
# Words that commonly lead into an address inside a sentence; trimmed off the reported span.
_LEAD_IN = re.compile(
    r"(?:.*(?:住在|住址是|住址为|住址|地址是|地址为|地址|家住|家在|住|位于|寄到|寄往|送到|搬到|在|是|为|：|:))"
)


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


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


def _scan(text: str, kinds: set[str]) -> list[PiiMatch]:
    t = _ascii(text)
    found: list[PiiMatch] = []

    def add(kind: PiiKind, start: int, end: int) -> None:
        found.append(PiiMatch(kind, start, end, text[start:end]))

    if "email" in kinds:
        for m in _EMAIL.finditer(t):
            add("email", m.start(), m.end())
    if kinds & {"id_number", "id_like"}:
        for m in _ID18.finditer(t):
            raw = m.group(1).replace(" ", "")
            if not _id_shape(raw):
                continue
            if id_checksum(raw[:17]) == raw[17].upper():
                if "id_number" in kinds:
                    add("id_number", m.start(1), m.end(1))
            elif "id_like" in kinds and not (raw.isdigit() and luhn_ok(raw)):
                add("id_like", m.start(1), m.end(1))
    if "id_number" in kinds:
        for m in _OLD_ID.finditer(t):
            if _valid_old_id(m.group(1)):
                add("id_number", m.start(1), m.end(1))
    if "bank_card" in kinds:
        for m in _CARD.finditer(t):
            if luhn_ok(_digits(m.group(1))):
                add("bank_card", m.start(1), m.end(1))
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


def _shorten_address(text: str, match: PiiMatch, limit: int) -> PiiMatch:
    m = _ADDRESS.match(_ascii(text), match.start, limit) if limit > match.start else None
    end = m.end() if m else match.start
    return PiiMatch("address", match.start, end, text[match.start:end])


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Personal data in `text`, non-overlapping, in text order (earlier kinds in ALL_KINDS win)."""
    wanted = set(ALL_KINDS if kinds is None else kinds)
    unknown = wanted - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown PII kinds: {sorted(unknown)}")
    priority = {k: i for i, k in enumerate(ALL_KINDS)}
    chosen: list[PiiMatch] = []
    for match in sorted(_scan(text, wanted), key=lambda m: (priority[m.kind], m.start, -m.end)):
        clash = [c for c in chosen if match.start < c.end and c.start < match.end]
        if clash and match.kind == "address":
            # An address running into a phone number ("…45号13812345678"): keep the part before it.
            match = _shorten_address(text, match, min(c.start for c in clash))
            clash = [c for c in chosen if match.start < c.end and c.start < match.end]
        if not clash and match.end > match.start:
            chosen.append(match)
    return sorted(chosen, key=lambda m: m.start)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


def mask_value(kind: str, value: str) -> str:
    """The masked form of one detected value."""
    v = _ascii(value)
    if kind == "mobile":
        d = _digits(v)[-11:]
        return f"{d[:3]}****{d[-4:]}"
    if kind in ("id_number", "id_like"):
        s = v.replace(" ", "")
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
        out.append(text[pos:m.start])
        out.append(mask_value(m.kind, m.value))
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


def mask(text: str, kinds: Iterable[str] | None = None) -> str:
    """`text` with every detected value replaced by its masked form.

    Repeated until nothing more is found (values glued together, e.g. an email running into a phone
    number, can reveal a second value only once the first is masked), so the result contains no
    detectable personal data and masking is idempotent.
    """
    wanted = None if kinds is None else tuple(kinds)
    for _ in range(_MAX_PASSES):
        masked = _mask_once(text, wanted)
        if masked == text:
            break
        text = masked
    return text


def normalise_phone(s: str) -> str | None:
    """A contact field as "13812345678" (mobile) or "021-12345678[-ext]" (fixed line), else None."""
    t = _ascii(s).strip()
    m = _MOBILE.fullmatch(t)
    if m and len(_digits(m.group(1))) == 11:
        return _digits(m.group(1))
    m2 = _LANDLINE.fullmatch(t)
    if m2:
        area = m2.group(1) or m2.group(2)
        ext = re.search(r"(?:-|转|ext\.?)\s?([0-9]{1,5})$", t[m2.end(3):])
        return f"{area}-{m2.group(3)}" + (f"-{ext.group(1)}" if ext else "")
    return None


# --- logging ---------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else was passed in `extra=` and is masked if a string.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName",
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
