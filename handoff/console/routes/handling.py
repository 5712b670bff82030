"""Console routes of ticket handling beyond the reply (handoff.tickets.handling; the category change is
handoff/console/routes/timelimits.py, since it moves the due date): send an interim reply (阶段性答复), merge a duplicate into the kept ticket (the handler must be able to
handle both tickets: a supervisor, or staff of both departments), and the queue's bulk actions
(受理/分派, 转办, 办结 of the checked tickets: the permission is checked and an audit entry written per
ticket; what could not be done is listed by number). What the pages show of them:
`handoff.console.handling_views`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.auth import User
from handoff.console.deps import PREFIX, Console, ConsoleDep, Handler
from handoff.console.handling_views import assignees
from handoff.console.routes.tickets import Version, act
from handoff.console.web import ConsoleRoute
from handoff.tickets import TicketView
from knowledge.errors import InvalidInput, NotFound, PolicybotError

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

BULK_ACTIONS = ("assign", "transfer", "close")
MAX_BULK = 100


@router.post("/tickets/{no}/interim")
def interim(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    text: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        done = console.tickets.interim_reply(
            t.no, staff=staff.user.username, text=text, expected_version=version
        )
        return {"channel": done.channel, "length": len(text.strip())}

    return act(console, request, staff, no, "interim", run)


@router.post("/tickets/{no}/merge")
def merge(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    into: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        kept = _kept(console, staff.user, into)
        console.tickets.merge(t.no, into=kept.no, by=staff.user.username, expected_version=version)
        console.record(staff, "merged_in", kept.no, **{"from": t.no})
        return {"into": kept.no}

    return act(console, request, staff, no, "merge", run)


def _kept(console: Console, user: User, into: str) -> TicketView:
    """The ticket to keep, if this user may handle it (else the same NotFound as a hidden ticket)."""
    if not into.strip():
        raise InvalidInput("请填写要保留的留言编号", "merge without a target")
    kept = console.tickets.get(into)
    if not user.may_handle_ticket(kept.department):
        raise NotFound(
            f"未找到可合并的留言 {into.strip().upper()}", f"{user.username} may not handle {kept.no}"
        )
    return kept


@router.post("/queue/bulk")
def bulk(
    staff: Handler,
    console: ConsoleDep,
    action: Annotated[str, Form(max_length=20)] = "",
    no: Annotated[list[str] | None, Form()] = None,
    assignee: Annotated[str, Form(max_length=50)] = "",
    department: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    nos = [n.strip()[:40] for n in (no or []) if n.strip()][:MAX_BULK]
    if action not in BULK_ACTIONS:
        raise InvalidInput("请选择批量操作", f"unknown bulk action {action!r}")
    if not nos:
        raise InvalidInput("请先勾选留言", "bulk action without tickets")
    user, ok, failed = staff.user, 0, []
    assignee = assignee.strip() or user.username
    department, reason = department.strip(), reason.strip()
    if action == "assign" and assignee not in {u.username for u in assignees(console, user)}:
        raise InvalidInput("所选办理人不能办理这些留言", f"bulk assign to {assignee!r}")
    for number in nos:
        try:
            t = console.tickets.get(number)
            if not user.may_handle_ticket(t.department):
                raise NotFound("无权办理", f"bulk: {user.username} may not handle {t.no}")
            detail = _bulk_one(console, user, t, action, assignee, department, reason)
        except PolicybotError:
            failed.append(number.upper())
            continue
        ok += 1
        console.record(staff, action, t.no, bulk=True, **detail)
    return RedirectResponse(f"/console/queue?done=bulk&ok={ok}&failed={','.join(failed)}", status_code=303)


def _bulk_one(
    console: Console, user: User, t: TicketView, action: str, assignee: str, department: str, reason: str
) -> dict[str, Any]:
    tickets, by = console.tickets, user.username
    if action == "assign":
        target = next((u for u in console.accounts.users() if u.username == assignee), None)
        if target is None or not target.may_handle_ticket(t.department):
            raise InvalidInput("所选办理人不能办理该留言", f"bulk: {assignee} may not handle {t.no}")
        tickets.assign(t.no, staff=assignee, by=by)
        return {"assignee": assignee}
    if action == "transfer":
        tickets.transfer(t.no, to_department=department, reason=reason, by=by)
        return {"from": t.department, "to": department, "reason": reason}
    tickets.close(t.no, by=by, reason=reason or None)
    return {"reason": reason} if reason else {}
