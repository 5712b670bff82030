"""The console audit log (`audit_log` table): who did what, when and from which IP — logins
(success, failure, lockout), views of contact data, replies, transfers, publications, FAQ changes
and account changes. Entries are append-only; texts in `detail` are masked by the caller or here.
Admins read it with filters and export it as CSV whose cells cannot start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.models import AuditEntry
from handoff.privacy import mask
from knowledge.db import transaction
from knowledge.faqs import formula_safe

log = logging.getLogger(__name__)

ACTION_LABELS: Final[Mapping[str, str]] = {
    "login": "登录成功",
    "login_failed": "登录失败",
    "login_locked": "登录锁定",
    "logout": "退出登录",
    "password": "修改密码",
    "contact_view": "查看联系方式",
    "assign": "受理留言",
    "reply": "答复留言",
    "note": "内部备注",
    "transfer": "转办",
    "close": "办结",
    "reopen": "重新办理",
    "publish": "公开留言",
    "unpublish": "取消公开",
    "faq_draft": "生成问答草稿",
    "privacy_export": "导出个人信息",
    "privacy_erase": "删除个人信息",
    "faq_edit": "修改问答",
    "faq_publish": "发布问答",
    "user_add": "新增用户",
    "user_edit": "修改用户",
    "user_password": "重置密码",
    "department_add": "新增部门",
    "department_edit": "修改部门",
    "template_add": "新增答复模板",
    "template_edit": "修改答复模板",
    "template_delete": "删除答复模板",
    "sensitive_add": "添加敏感词",
    "sensitive_delete": "删除敏感词",
    "smalltalk_phrase_add": "添加寒暄短语",
    "smalltalk_phrase_delete": "删除寒暄短语",
    "smalltalk_reply": "修改寒暄回复",
    "smalltalk_reset": "恢复默认寒暄语",
    "time_limits": "修改办理时限",
    "category": "更改留言类型",
    "extension_request": "申请延期",
    "extension_approve": "批准延期",
    "extension_refuse": "不批准延期",
    "supplement_request": "要求补正",
    "supplement_resume": "恢复计时",
    "supplement_chat": "留言人在对话中补正",
    "supplement_expired": "补正期限已过",
    "board_supplement": "留言人在留言板补正",
    "board_rate": "公众评价",
    "hotline_reply": "热线答复",
    "sla_warning": "到期提醒",  # handoff/staff_alerts.py
    "sla_escalation": "超期督办",
}
MAX_EXPORT = 100_000


@dataclass(frozen=True)
class AuditView:
    id: int
    at: dt.datetime  # aware UTC
    actor: str
    role: str
    ip: str
    action: str
    target: str
    detail: dict[str, Any]

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)[:1000]
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value][:50]
    if isinstance(value, dict):
        return {str(k)[:50]: _masked(v) for k, v in list(value.items())[:50]}
    return value


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self,
        action: str,
        *,
        actor: str,
        role: str = "",
        ip: str = "",
        target: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry. Never raises into the caller's action (it is already done): a failure
        to write is logged loudly instead."""
        try:
            with transaction(self._sessions) as s:
                s.add(
                    AuditEntry(
                        at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        actor=actor[:100],
                        role=role[:12],
                        ip=ip[:64],
                        action=action[:30],
                        target=target[:100],
                        detail=_masked(dict(detail or {})),
                    )
                )
        except Exception:
            log.exception("audit_write_failed action=%s actor=%s target=%s", action, actor, target)

    def _query(
        self,
        *,
        actor: str | None,
        action: str | None,
        target: str | None,
        since: dt.date | None,
        until: dt.date | None,
    ) -> Select[AuditEntry]:
        stmt = select(AuditEntry)
        if actor:
            stmt = stmt.where(AuditEntry.actor == actor.strip())
        if action:
            stmt = stmt.where(AuditEntry.action == action.strip())
        if target:
            stmt = stmt.where(AuditEntry.target.contains(target.strip(), autoescape=True))
        if since:
            stmt = stmt.where(AuditEntry.at >= dt.datetime.combine(since, dt.time()))
        if until:
            stmt = stmt.where(AuditEntry.at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
        return stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditView]:
        stmt = self._query(actor=actor, action=action, target=target, since=since, until=until)
        stmt = stmt.limit(max(1, min(limit, 1000))).offset(max(0, offset))
        with self._sessions() as s:
            return [_view(e) for e in s.execute(stmt).scalars()]

    def export_csv(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> Iterator[str]:
        """CSV text in chunks (UTF-8 with BOM for Excel), newest first, formula-escaped."""
        stmt = self._query(actor=actor, action=action, target=target, since=since, until=until).limit(
            MAX_EXPORT
        )
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")
        writer.writerow(["时间(UTC)", "操作人", "角色", "IP", "操作", "对象", "详情"])
        with self._sessions() as s:
            for n, e in enumerate(s.execute(stmt).scalars(), 1):
                v = _view(e)
                writer.writerow(
                    [
                        formula_safe(c)
                        for c in (
                            v.at.strftime("%Y-%m-%d %H:%M:%S"),
                            v.actor,
                            v.role,
                            v.ip,
                            v.label,
                            v.target,
                            json.dumps(v.detail, ensure_ascii=False, sort_keys=True),
                        )
                    ]
                )
                if n % 500 == 0:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()


def _view(e: AuditEntry) -> AuditView:
    return AuditView(
        e.id, e.at.replace(tzinfo=dt.UTC), e.actor, e.role, e.ip, e.action, e.target, dict(e.detail or {})
    )


__all__ = ["ACTION_LABELS", "AuditLog", "AuditView", "formula_safe"]
