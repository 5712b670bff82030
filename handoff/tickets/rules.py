"""The rules for ticket input: every text a ticket takes is cleaned (`clean_text`), bounded and, where it
is free text, checked here (`TicketService` calls these and nothing else validates ticket input):
required texts, actor names, transcripts and matched FAQs, the department taken from them, ticket
numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from handoff.privacy import clean_text, mask
from handoff.tickets.records import (
    MAX_MATCHED,
    MAX_TRANSCRIPT_ENTRIES,
    MAX_TRANSCRIPT_TEXT,
    ROLES,
)
from knowledge.errors import InvalidInput

# --- helpers -------------------------------------------------------------------------------------


def _required(value: str | None, *, field: str, user_message: str, max_len: int) -> str:
    text = clean_text(value or "").strip()
    if not text:
        raise InvalidInput(user_message, f"{field} is empty")
    if len(text) > max_len:
        raise InvalidInput(
            f"{_FIELD_NAMES.get(field, field)}过长（最多{max_len}字）", f"{field} too long: {len(text)}"
        )
    return text


_FIELD_NAMES = {
    "question": "留言内容",
    "reply": "答复内容",
    "note": "备注",
    "reason": "原因",
    "contact_name": "姓名",
    "department": "部门名称",
    "channel": "渠道",
    "user_ref": "用户标识",
    "actor": "操作人",
    "idempotency_key": "提交标识",
    "publish_question": "公开的留言内容",
    "publish_reply": "公开的答复内容",
}


def _actor(value: str | None) -> str:
    return _required(value, field="actor", user_message="缺少操作人", max_len=100)


def _clean_transcript(transcript: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Validate roles, mask texts and keep the last entries only."""
    out: list[dict[str, str]] = []
    for i, entry in enumerate(list(transcript)[-MAX_TRANSCRIPT_ENTRIES:]):
        role = str(entry.get("role", "")).strip()
        if role not in ROLES:
            raise InvalidInput("对话记录格式不正确", f"transcript entry {i}: unknown role {role!r}")
        text = mask(str(entry.get("text", "")))[:MAX_TRANSCRIPT_TEXT]
        at = entry.get("at")
        if isinstance(at, dt.datetime):
            at_text = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).isoformat()
        else:
            at_text = "" if at is None else str(at)[:40]
        out.append({"role": role, "text": text, "at": at_text})
    return out


def _clean_matched(matched: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Keep what the console needs of the nearest FAQs/policies, best first by score."""
    items: list[dict[str, Any]] = []
    for m in matched:
        item: dict[str, Any] = {}
        for key in ("kind", "id", "title", "unit", "doc_no"):
            value = m.get(key)
            if value is not None and str(value).strip():
                item[key] = mask(str(value).strip())[:200]
        score = m.get("score")
        if isinstance(score, int | float):
            item["score"] = float(score)
        if item:
            items.append(item)
    if all("score" in i for i in items):  # otherwise keep the caller's order
        items.sort(key=lambda i: -float(i["score"]))
    return items[:MAX_MATCHED]


def _department_from(matched: list[dict[str, Any]]) -> str | None:
    for item in matched:
        unit = str(item.get("unit", "")).strip()
        if unit:
            return unit[:200]
    return None


def _normalise_no(no: str) -> str:
    return (no or "").strip().upper()[:40]
