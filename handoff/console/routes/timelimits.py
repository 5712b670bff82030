"""Console routes of time limits: the administrators' 办理时限 page (per-category limits in working days,
stored over the setting), and on a ticket's page the category change, 延期 (the handler requests, a
supervisor other than the requester approves or refuses) and 补正 (the handler asks the citizen, and
may restart the clock). The operations are the ticket service's (handoff/tickets/extensions.py,
supplements.py); every change is audited here and written to the ticket's history there.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.deps import PREFIX, Admin, Console, ConsoleDep, Handler, Staff, base
from handoff.console.routes.tickets import Version, act, handleable
from handoff.console.web import ConsoleRoute, render
from handoff.tickets import TicketView
from handoff.tickets.limits import MAX_CATEGORY_LIMIT, CategoryLimits, parse_form_days
from handoff.tickets.records import CATEGORIES
from knowledge.errors import InvalidInput, NotFound, PolicybotError

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Reason = Annotated[str, Form(max_length=3000)]
Days = Annotated[str, Form(max_length=10)]
PAGE = "/console/admin/time-limits"


def _supervisor(staff: Handler, console: ConsoleDep, no: str) -> Staff:
    """A supervisor; for anyone else a 403 — after the 404 of another department's ticket, as on every
    ticket route (checked before the form is read)."""
    handleable(console, staff, no)
    if staff.user.role != "supervisor":
        raise HTTPException(403, "只有督办人员可以审批延期申请")
    return staff


Supervisor = Annotated[Staff, Depends(_supervisor)]

# --- the administrators' page ----------------------------------------------------------------------


def _limits(console: Console) -> CategoryLimits:
    found = console.tickets.category_limits
    if found is None:
        raise NotFound("未启用按类型的办理时限", "ticket service built without category limits")
    return found


def _page(console: Console, request: Request, staff: Staff, error: str = "") -> Response:
    ctx = base(
        request,
        staff,
        title="办理时限",
        rows=_limits(console).rows(),
        default_limit=console.tickets.limit_for(""),
        max_days=MAX_CATEGORY_LIMIT,
    )
    if error:
        ctx["error"] = error
    return render(request, "time_limits.html", ctx, status_code=400 if error else 200)


@router.get("/admin/time-limits")
def time_limits_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return _page(console, request, staff)


@router.post("/admin/time-limits")
async def time_limits_save(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    form = await request.form()
    try:
        values = {c: parse_form_days(str(form.get(f"days_{c}") or ""), c) for c in CATEGORIES}
        changed = _limits(console).save(values)
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message)
    if changed:
        console.record(staff, "time_limits", "", changed=changed)
    return RedirectResponse(f"{PAGE}?done=time_limits", status_code=303)


# --- a ticket's category, 延期 and 补正 ---------------------------------------------------------------


def _int(raw: str, what: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdecimal() or len(text) > 4:
        raise InvalidInput(f"{what}应为整数（工作日）", f"bad number {text!r}")
    return int(text)


@router.post("/tickets/{no}/category")
def category(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    value: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        done = console.tickets.set_category(
            t.no, category=value, by=staff.user.username, expected_version=version
        )
        return {
            "from": t.category,
            "to": done.category,
            "due_date": [t.due_date.isoformat(), done.due_date.isoformat()],
        }

    return act(console, request, staff, no, "category", run)


@router.post("/tickets/{no}/extension")
def extension_request(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    days: Days = "",
    new_limit: Days = "",
    reason: Reason = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        console.tickets.request_extension(
            t.no,
            by=staff.user.username,
            reason=reason,
            days=_int(days, "延长的工作日数"),
            new_limit=_int(new_limit, "延期后的办理时限"),
            expected_version=version,
        )
        req = console.tickets.extensions(t.no)[-1]
        return {"days": req.days, "reason": req.reason}

    return act(console, request, staff, no, "extension_request", run)


@router.post("/tickets/{no}/extension/decide")
def extension_decide(
    staff: Supervisor,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    decision: Annotated[str, Form(max_length=10)] = "",
    note: Reason = "",
) -> Response:
    if decision not in ("approve", "refuse"):
        raise InvalidInput("请选择批准或不批准", f"unknown extension decision {decision!r}")
    action = f"extension_{decision}"

    def run(t: TicketView) -> dict[str, Any]:
        done = console.tickets.decide_extension(
            t.no, by=staff.user.username, approve=decision == "approve", note=note, expected_version=version
        )
        return {"due_date": [t.due_date.isoformat(), done.due_date.isoformat()], "note": note.strip()[:200]}

    return act(console, request, staff, no, action, run)


@router.post("/tickets/{no}/supplement")
def supplement_request(
    staff: Handler, console: ConsoleDep, request: Request, no: str, version: Version, text: Reason = ""
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        console.tickets.request_supplement(t.no, by=staff.user.username, text=text, expected_version=version)
        return {"channel": t.channel, "deadline": console.tickets.supplements(t.no)[-1].deadline.isoformat()}

    return act(console, request, staff, no, "supplement_request", run)


@router.post("/tickets/{no}/resume")
def supplement_resume(
    staff: Handler, console: ConsoleDep, request: Request, no: str, reason: Reason = ""
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        done = console.tickets.resume(t.no, by=staff.user.username, reason=reason)
        return {
            "due_date": [t.due_date.isoformat(), done.due_date.isoformat()],
            "paused_days": done.paused_days - t.paused_days,
        }

    return act(console, request, staff, no, "supplement_resume", run)
