"""Citizen-facing sentences that more than one channel sends, rendered from data (one home each).

The outbox renders every later message here (`ticket_reply`), so the citizen reads the ticket
number once and one preamble, whichever channel carries it; channels that need structured fields
(WeChat's 订阅通知) take them from `ticket_reply_notice`, never from this prose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from knowledge.models import CHINA_TZ


def ticket_reply(data: dict[str, Any]) -> str:
    """A staff reply pushed to the citizen: number and department once, then the reply."""
    department = str(data.get("department") or "").strip()
    head = (
        f"您的留言 {data.get('ticket_no', '')} 已有答复" + (f"（{department}）" if department else "") + "："
    )
    return f"{head}\n{str(data.get('reply') or '').strip()}"


def ticket_reply_notice(data: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, str]:
    """The fields of a notice (订阅通知 / 模板消息) for a channel that cannot send free text."""
    no = str(data.get("ticket_no") or "")
    when = (now or dt.datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    return {
        "ticket_no": no,
        "department": str(data.get("department") or "政务公开"),
        "summary": f"已答复，请发送“查询 {no}”查看",
        "date": when.strftime("%Y-%m-%d"),
    }
