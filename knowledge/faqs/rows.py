"""The faq and faq_version rows as the store writes them, shared by its edits and by imports: the
content values of a stored row, the insert values (with the derived search columns), the field-by-field
difference recorded in a version, the last version number of entries, and the allocation of generated
ids (faq-000123) from a counter in kb_state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.faqs.fields import question_key, search_norm
from knowledge.faqs.records import FIELDS, jsonable
from knowledge.models import Faq, FaqVersion, KbState

_ID_PREFIX = "faq-"
_ID_COUNTER_KEY = "faq_id_counter"
_CHUNK = 500


def row_values(row: Any) -> dict[str, Any]:
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
        "service_url": row.service_url,
    }


def field_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        name: [jsonable(old.get(name)), jsonable(new.get(name))]
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
        "search_text": search_norm("\n".join(parts)),
        "tags_text": "|" + "|".join(search_norm(t) for t in values["tags"]) + "|" if values["tags"] else "",
    }


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def insert_values(values: dict[str, Any], seq: int, by: str, now: dt.datetime) -> dict[str, Any]:
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
        "service_url": values.get("service_url"),
        "seq": seq,
        "created_at": now,
        "updated_at": now,
        "updated_by": by,
        **_derived(values),
    }


def last_versions(s: Session, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in chunks(ids):
        q = (
            select(FaqVersion.faq_id, func.max(FaqVersion.version_no))
            .where(FaqVersion.faq_id.in_(chunk))
            .group_by(FaqVersion.faq_id)
        )
        out.update({fid: int(n) for fid, n in s.execute(q)})
    return out


def next_ids(s: Session, n: int) -> list[str]:
    """Allocate `n` unused ids faq-000001... from a counter kept in kb_state (call after
    bump_version, which serialises writers)."""
    state = s.execute(
        select(KbState).where(KbState.key == _ID_COUNTER_KEY).with_for_update()
    ).scalar_one_or_none()
    if state is None:
        state = KbState(key=_ID_COUNTER_KEY, value=0)
        s.add(state)
    counter = state.value or 0
    out: list[str] = []
    while len(out) < n:
        want = n - len(out)
        candidates = [f"{_ID_PREFIX}{counter + i:06d}" for i in range(1, want + 1)]
        counter += want
        taken = set(s.scalars(select(Faq.id).where(Faq.id.in_(candidates))))
        out.extend(c for c in candidates if c not in taken)
    state.value = counter
    s.flush()
    return out
