"""The rules for ticket input: every text a ticket takes is cleaned (`clean_text`), bounded and, where it
is free text, checked here (`TicketService` calls these and nothing else validates ticket input):
required texts, actor names, transcripts and matched FAQs, the department taken from them, ticket
numbers, and a whole new ticket (`clean_new_ticket`: contact fields only with consent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handoff.privacy import clean_text, mask, normalise_phone
from handoff.tickets.records import (
    CATEGORIES,
    MAX_MATCHED,
    MAX_NAME,
    MAX_QUESTION,
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


@dataclass(frozen=True)
class NewTicket:
    """The cleaned input of `TicketService.open` (the question not yet masked)."""

    question: str
    channel: str
    user_ref: str
    department: str | None  # as given (cleaned), before the one taken from the matched entries
    name: str | None
    phone: str | None  # normalised
    consent: bool
    key: str | None  # the idempotency key
    transcript: list[dict[str, str]]
    matched: list[dict[str, Any]]
    category: str = "咨询"  # 咨询 / 建议 / 投诉 / 求助 / 举报
    flag_reason: str | None = None  # opens it flagged for a supervisor (敏感词, ...)


def clean_new_ticket(
    *,
    question: str,
    channel: str,
    user_ref: str,
    transcript: Sequence[Mapping[str, Any]],
    department: str | None,
    contact_name: str | None,
    contact_phone: str | None,
    consent: bool,
    idempotency_key: str | None,
    matched: Sequence[Mapping[str, Any]],
    category: str = "咨询",
    flag_reason: str | None = None,
) -> NewTicket:
    """Every check of a new ticket, in the order a citizen would fix them; InvalidInput on the first."""
    text = _required(question, field="question", user_message="请填写留言内容", max_len=MAX_QUESTION)
    channel = _required(channel, field="channel", user_message="缺少渠道", max_len=20)
    user_ref = _required(user_ref, field="user_ref", user_message="缺少用户标识", max_len=80)
    name = clean_text(contact_name or "").strip() or None
    phone_in = clean_text(contact_phone or "").strip() or None
    if (name or phone_in) and not consent:
        raise InvalidInput(
            "留下姓名或手机号码前，请先阅读并同意个人信息使用说明",
            "contact details given without consent",
        )
    if name is not None and len(name) > MAX_NAME:
        raise InvalidInput(f"姓名过长（最多{MAX_NAME}字）", f"contact_name too long: {len(name)}")
    phone: str | None = None
    if phone_in is not None:
        phone = normalise_phone(phone_in)
        if phone is None:
            raise InvalidInput(
                "联系电话格式不正确，请填写11位手机号码或带区号的固定电话", "invalid contact phone"
            )
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 100:
        raise InvalidInput("提交标识过长", f"idempotency_key too long: {len(key)}")
    if category not in CATEGORIES:
        raise InvalidInput("留言类型应为咨询、建议、投诉、求助或举报", f"unknown category {category!r}")
    return NewTicket(
        question=text,
        channel=channel,
        user_ref=user_ref,
        department=(department or "").strip()[:200] or None,
        name=name,
        phone=phone,
        consent=consent,
        key=key,
        transcript=_clean_transcript(transcript),
        matched=_clean_matched(matched),
        category=category,
        flag_reason=(flag_reason or None) and flag_reason[:20],
    )
