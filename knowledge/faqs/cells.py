"""The formula-safe spreadsheet cell, for every xlsx and CSV file the service writes (FAQ exports,
reports, the audit log): text a spreadsheet would run as a formula gets a leading quote, and the FAQ
import strips exactly that quote again (`unescape`), so that an export imports back unchanged.
"""

from __future__ import annotations

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _needs_escape(s: str) -> bool:
    """Text a spreadsheet would run as a formula (= + - @ tab CR first), or text that already looks
    escaped (quotes before such text), which must be escaped again to survive the round trip."""
    return s.startswith(_FORMULA_START) or (s.startswith("'") and _needs_escape(s[1:]))


def unescape(s: str) -> str:
    """Undo the escape written by export: strip the one leading quote it added."""
    return s[1:] if s.startswith("'") and _needs_escape(s[1:]) else s


def formula_safe(value: object) -> object:
    """A spreadsheet cell (xlsx or CSV) that shows text, never runs it as a formula: a leading quote
    before = + - @ tab CR (and before text that already looks escaped, so that import can undo it)."""
    if isinstance(value, str) and _needs_escape(value):
        return "'" + value
    return value
