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


# --- the policy library: superseded sources and service links (knowledge.answer data) ---------------
LINK_BROKEN = "办理入口维护中，可拨打12345咨询"


def superseded_notice(superseded: Any) -> str:
    """The answer's first line when the FAQ's source was repealed or revised: 《旧》已废止，现行为《新》。"""
    old = superseded.old
    new = superseded.new
    status = superseded.status
    verb = "已修订" if status == "已修订" else f"已{status}"
    return (
        f"您咨询的问题原依据《{old.title}》，该文件{verb}，现行为《{new.title}》"
        + (f"（{new.doc_no}）" if new.doc_no else "")
        + "。现行文件相关条款如下："
    )


def service_link_line(url: str | None, broken: bool) -> str:
    """The line under an answer with its service link (办事链接), or the maintenance notice."""
    if broken:
        return LINK_BROKEN
    return f"在线办理：{url}" if url else ""
