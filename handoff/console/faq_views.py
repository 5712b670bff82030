"""What the console's knowledge-base pages show of the FAQ store, computed once for every page: who
may read, draft and edit an entry, the drafts a user may see, the source policies (their titles and
文号, and which are 失效/废止), and an entry's edit history as field-by-field differences (text as
deleted and inserted runs, lists as removed and added items, other fields as old and new value).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from handoff.console.auth import User
from knowledge.answer import KnowledgeBase
from knowledge.faqs import FIELD_LABELS, STATUS_LABELS, FaqRecord, VersionRecord

ACTION_LABELS = {
    "create": "新建",
    "edit": "修改",
    "publish": "发布",
    "retire": "下线",
    "import": "导入",
    "restore": "恢复",
}
LIST_FIELDS = frozenset({"similar", "tags"})
TEXT_FIELDS = frozenset({"question", "answer"})


def draft_units(user: User) -> tuple[str, ...] | None:
    """The units whose drafts this user sees (None: all; admins and supervisors)."""
    return None if user.role in ("admin", "supervisor") else tuple(user.departments)


def may_read(user: User, rec: FaqRecord) -> bool:
    """Every console user reads published and retired entries; drafts only who may draft them."""
    return rec.status != "draft" or user.may_draft_faq(rec.unit)


def may_change(user: User, rec: FaqRecord) -> bool:
    """Save the form: editors of the unit, or drafting-unit readers for a draft of their unit."""
    return user.may_edit_faq(rec.unit) or (rec.status == "draft" and user.may_draft_faq(rec.unit))


def inactive_policy_keys(kb: KnowledgeBase) -> list[str]:
    """Every key (id, 文号, title) by which an FAQ may name a source policy that is 失效/废止."""
    keys: list[str] = []
    for p in kb.policies.list():
        if not p.is_current:
            keys.extend(k for k in (p.id, p.doc_no, p.title) if k)
    return keys


def policy_labels(kb: KnowledgeBase, keys: tuple[str, ...]) -> dict[str, str]:
    """source_policy value -> 《title》（文号） when the policy is imported, else the value itself."""
    out: dict[str, str] = {}
    for key in keys:
        p = kb.policies.cached(key)
        out[key] = f"《{p.title}》" + (f"（{p.doc_no}）" if p.doc_no else "") if p else key
    return out


@dataclass(frozen=True)
class Segment:
    kind: str  # same / del / ins
    text: str


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    old: str
    new: str
    segments: tuple[Segment, ...] = ()  # text fields: the character diff
    removed: tuple[str, ...] = ()  # list fields
    added: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEntry:
    version_no: int
    action: str
    label: str
    at: Any
    by: str
    note: str
    changes: tuple[FieldChange, ...] = field(default_factory=tuple)


def _plain(name: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if name == "status":
        return STATUS_LABELS.get(str(value), str(value))
    if isinstance(value, list):
        return "，".join(str(v) for v in value) or "（空）"
    return str(value)


def text_segments(old: str, new: str) -> tuple[Segment, ...]:
    out: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            out.append(Segment("same", old[a1:a2]))
            continue
        if a2 > a1:
            out.append(Segment("del", old[a1:a2]))
        if b2 > b1:
            out.append(Segment("ins", new[b1:b2]))
    return tuple(out)


def field_change(name: str, old: Any, new: Any) -> FieldChange:
    label = FIELD_LABELS.get(name, name)
    if name in LIST_FIELDS:
        before = [str(v) for v in old or []]
        after = [str(v) for v in new or []]
        return FieldChange(
            name,
            label,
            _plain(name, before),
            _plain(name, after),
            removed=tuple(v for v in before if v not in after),
            added=tuple(v for v in after if v not in before),
        )
    if name in TEXT_FIELDS and old and new:
        return FieldChange(name, label, str(old), str(new), segments=text_segments(str(old), str(new)))
    return FieldChange(name, label, _plain(name, old), _plain(name, new))


def history_entries(versions: list[VersionRecord]) -> list[HistoryEntry]:
    """Newest first, each with its changed fields in the store's field order."""
    order = list(FIELD_LABELS)
    out = []
    for v in versions:
        names = sorted(v.changes, key=lambda n: order.index(n) if n in order else len(order))
        out.append(
            HistoryEntry(
                v.version_no,
                v.action,
                ACTION_LABELS.get(v.action, v.action),
                v.at,
                v.by,
                v.note,
                tuple(field_change(n, *v.changes[n]) for n in names),
            )
        )
    return out[::-1]


__all__ = [
    "ACTION_LABELS",
    "FieldChange",
    "HistoryEntry",
    "Segment",
    "draft_units",
    "field_change",
    "history_entries",
    "inactive_policy_keys",
    "may_change",
    "may_read",
    "policy_labels",
    "text_segments",
]
