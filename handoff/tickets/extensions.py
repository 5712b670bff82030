"""Time limits of a ticket beyond its opening (`TimeLimitMethods`, a mixin of `TicketService`): the
category changed by staff (the due date recomputed from the received date with that category's limit),
延期 (the handler asks for extra working days with a reason, a supervisor other than the requester
approves or refuses; on approval the due date moves by exactly those working days and the citizen is
told on their channel through the outbox) and, from handoff/tickets/supplements.py, 补正. Every step
is one transaction with a ticket event (the history); the console and CLI add the audit entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from handoff.models import Ticket, TicketExtension
from handoff.privacy import mask
from handoff.tickets.limits import MAX_CATEGORY_LIMIT, check_days
from handoff.tickets.records import CATEGORIES, MAX_NOTE, MERGED, OPEN_STATUSES, SUPPLEMENT, TicketView
from handoff.tickets.rules import _actor, _required
from handoff.tickets.supplements import SupplementMethods, SupplementView
from handoff.tickets.timing import EXTENDED, Notices, Step, _TimingBase
from knowledge.errors import InvalidInput

RUNNING = (*OPEN_STATUSES, SUPPLEMENT)  # statuses whose time limit still matters


@dataclass(frozen=True)
class ExtensionView:
    id: int
    status: str  # requested / approved / refused
    days: int
    reason: str
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str | None
    due_before: dt.date
    due_after: dt.date | None

    @property
    def label(self) -> str:
        return {"requested": "待审批", "approved": "已批准", "refused": "未批准"}.get(
            self.status, self.status
        )


def _extension_view(e: TicketExtension) -> ExtensionView:
    return ExtensionView(
        e.id,
        e.status,
        e.days,
        e.reason,
        e.requested_by,
        e.requested_at.replace(tzinfo=dt.UTC),
        e.decided_by,
        e.decided_at.replace(tzinfo=dt.UTC) if e.decided_at else None,
        e.note,
        e.due_before,
        e.due_after,
    )


def _pending(t: Ticket) -> TicketExtension | None:
    s = object_session(t)
    assert s is not None
    return s.execute(
        select(TicketExtension).where(
            TicketExtension.ticket_id == t.id, TicketExtension.status == "requested"
        )
    ).scalar_one_or_none()


class TimeLimitMethods(SupplementMethods, _TimingBase):
    """Category changes and 延期 (plus 补正 from `SupplementMethods`)."""

    def set_category(
        self, no: str, *, category: str, by: str, expected_version: int | None = None
    ) -> TicketView:
        """Change the category; the due date is recomputed from the received date with the new
        category's limit (approved 延期 and finished 补正 pauses are kept)."""
        by = _actor(by)
        if category not in CATEGORIES:
            raise InvalidInput(f"留言类型应为{'、'.join(CATEGORIES)}之一", f"unknown category {category!r}")
        plan = self._plan(no)
        with self._sessions() as s:
            dept = s.execute(select(Ticket.department).where(Ticket.no == plan.no)).scalar_one()
        limit = self.limit_for(dept, category)
        due = self._due(plan, base=limit)

        def change(t: Ticket, now: dt.datetime) -> Step:
            if t.status == MERGED:
                raise InvalidInput("该留言已合并，不能修改类型", f"ticket {t.no}: merged")
            if t.category == category:
                raise InvalidInput(f"留言类型已是“{category}”", f"ticket {t.no}: same category")
            plan.same(t)
            detail = {
                "from": t.category,
                "to": category,
                "limit_days": [plan.base, limit],
                "due_date": [t.due_date.isoformat(), due.day.isoformat()],
            }
            if t.status in RUNNING:  # a replied or closed ticket keeps the date it was answered by
                t.due_date, t.due_warnings = due.day, list(due.warnings)
            t.category, t.limit_days = category, limit
            return Step("category", detail)

        return self._update(plan.no, actor=by, expected_version=expected_version, change=change)

    # --- 延期 ----------------------------------------------------------------------------------

    def request_extension(
        self,
        no: str,
        *,
        by: str,
        reason: str,
        days: int | None = None,
        new_limit: int | None = None,
        expected_version: int | None = None,
    ) -> TicketView:
        """The handler's 延期 request: `days` extra working days, or the limit they want in all
        (`new_limit`, e.g. 7 -> 15). One open request per ticket; a supervisor decides it."""
        by = _actor(by)
        why = _required(reason, field="reason", user_message="请填写延期原因", max_len=MAX_NOTE)
        plan = self._plan(no)
        current = plan.base + plan.extension
        if (days is None) == (new_limit is None):
            raise InvalidInput(
                "请填写延长的工作日数或延期后的办理时限（二选一）", "extension: days xor new_limit"
            )
        if new_limit is not None:
            check_days(new_limit, what="延期后")
            days = new_limit - current
            if days < 1:
                raise InvalidInput(
                    f"延期后的办理时限应大于当前的{current}个工作日", f"extension to {new_limit} <= {current}"
                )
        assert days is not None
        check_days(days, what="延期")
        if current + days > MAX_CATEGORY_LIMIT:
            raise InvalidInput(
                f"延期后的办理时限不能超过{MAX_CATEGORY_LIMIT}个工作日", f"extension to {current + days}"
            )
        extra = days

        def change(t: Ticket, now: dt.datetime) -> Step:
            self._require(t, RUNNING, "申请延期")
            if _pending(t) is not None:
                raise InvalidInput(
                    "该留言已有待审批的延期申请", f"ticket {t.no}: extension already requested"
                )
            s = object_session(t)
            assert s is not None
            row = TicketExtension(
                ticket_id=t.id,
                status="requested",
                days=extra,
                reason=mask(why),
                requested_by=by,
                requested_at=now,
                due_before=t.due_date,
            )
            s.add(row)
            s.flush()
            return Step(
                "extension_request",
                {"id": row.id, "days": extra, "limit_days": [current, current + extra], "reason": mask(why)},
            )

        return self._update(plan.no, actor=by, expected_version=expected_version, change=change)

    def decide_extension(
        self, no: str, *, by: str, approve: bool, note: str | None = None, expected_version: int | None = None
    ) -> TicketView:
        """A supervisor's decision on the open 延期 request (not their own). Approved: the due date
        moves by the requested working days and the citizen is told (ticket number, new due date,
        reason) through the outbox in the same transaction. Refused: nothing else changes."""
        by = _actor(by)
        remark = mask((note or "").strip())[:MAX_NOTE] or None
        plan = self._plan(no)
        with self._sessions() as s:
            tid = s.execute(select(Ticket.id).where(Ticket.no == plan.no)).scalar_one()
            open_row = s.execute(
                select(TicketExtension).where(
                    TicketExtension.ticket_id == tid, TicketExtension.status == "requested"
                )
            ).scalar_one_or_none()
            if open_row is None:
                raise InvalidInput("该留言没有待审批的延期申请", f"ticket {plan.no}: no extension request")
            request_id, days, reason = open_row.id, open_row.days, open_row.reason
        due = self._due(plan, extension=days)

        def change(t: Ticket, now: dt.datetime) -> Step:
            row = _pending(t)
            if row is None or row.id != request_id:
                raise InvalidInput(
                    "该延期申请已被处理，请刷新", f"ticket {t.no}: extension {request_id} decided"
                )
            if row.requested_by == by:
                raise InvalidInput(
                    "不能审批自己提交的延期申请，请由其他督办人员审批", f"{by} decides own extension"
                )
            row.decided_by, row.decided_at, row.note = by, now, remark
            detail: dict[str, Any] = {"id": row.id, "days": days, "note": remark}
            if not approve:
                row.status = "refused"
                return Step("extension_refuse", detail)
            self._require(t, RUNNING, "延期")
            plan.same(t)
            row.status, row.due_after = "approved", due.day
            detail["due_date"] = [t.due_date.isoformat(), due.day.isoformat()]
            t.extension_days = (t.extension_days or 0) + days
            t.due_date, t.due_warnings = due.day, list(due.warnings)
            return Step("extension_approve", detail)

        after = self._notify(
            EXTENDED,
            {"due_date": due.day.isoformat(), "days": days, "reason": reason},
            f"{EXTENDED}:{request_id}",
        )
        return self._update(
            plan.no,
            actor=by,
            expected_version=expected_version,
            change=change,
            after=after if approve else None,
        )

    def extensions(self, no: str) -> list[ExtensionView]:
        """The ticket's 延期 requests, oldest first."""
        with self._sessions() as s:
            tid = s.execute(select(Ticket.id).where(Ticket.no == no.strip().upper())).scalar_one_or_none()
            rows = s.execute(
                select(TicketExtension).where(TicketExtension.ticket_id == tid).order_by(TicketExtension.id)
            ).scalars()
            return [_extension_view(e) for e in rows]


__all__ = ["ExtensionView", "Notices", "SupplementView", "TimeLimitMethods"]
