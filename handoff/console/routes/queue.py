"""Console route of the ticket queue (/console/queue): the tickets of the departments the user may
read (admins: every queue, read-only), filtered by status, department, overdue and flagged, searched
by ticket number, phone, name or text (`handoff.console.ticket_search`: contact searches audited,
phones masked), paged, with counts per status and the due-date class of each row. Handlers get
checkboxes for the bulk actions (handoff/console/routes/handling.py). Its live counts
(/console/api/counts, JSON, polled by live.js) feed the navigation badge, the queue's counts and its
"有 N 条新留言" bar.
"""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from handoff.console.deps import PREFIX, ConsoleDep, Reader, base, query_without_page, visible_departments
from handoff.console.handling_views import assignees
from handoff.console.ticket_search import masked_phone, search
from handoff.console.web import ConsoleRoute, render
from handoff.tickets.records import ALL_STATUSES, STATUSES
from knowledge.errors import InvalidInput
from knowledge.models import CHINA_TZ

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/queue")
def queue(
    staff: Reader,
    console: ConsoleDep,
    request: Request,
    status: Annotated[str, Query(max_length=10)] = "",
    department: Annotated[str, Query(max_length=200)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    overdue: Annotated[str, Query(max_length=1)] = "",
    flagged: Annotated[str, Query(max_length=1)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    tickets, config, user = console.tickets, console.config, staff.user
    allowed = visible_departments(user)
    scope: list[str] | None = allowed
    if department:
        if allowed is not None and department not in allowed:
            raise HTTPException(403, "您无权查看该部门的留言")
        scope = [department]
    if status and status not in ALL_STATUSES:
        raise InvalidInput("未知的办理状态", f"unknown status {status!r}")
    limit, offset = config.page_size + 1, (page - 1) * config.page_size
    contacts = user.role in ("staff", "supervisor")  # phone and name search (audited)
    phones = False
    if q.strip():
        found = search(
            tickets,
            console.audit,
            q,
            actor=user.username,
            role=user.role,
            ip=staff.ip,
            departments=scope,
            contacts=contacts,
            status=status or None,
            limit=limit,
            offset=offset,
        )
        rows = [
            t
            for t in found.rows
            if (overdue != "1" or t.overdue) and (flagged != "1" or t.flagged)  # filters on the page
        ]
        phones = found.audited
    else:
        rows = tickets.list(
            status=status or None,
            department=scope,
            overdue=True if overdue == "1" else None,
            flagged=True if flagged == "1" else None,
            limit=limit,
            offset=offset,
        )
    today = dt.datetime.now(CHINA_TZ).date()
    more = len(rows) > config.page_size
    rows = rows[: config.page_size]
    counts = tickets.counts(department=scope)
    departments = sorted(allowed) if allowed is not None else console.known_departments()
    bulk_failed = [n for n in request.query_params.get("failed", "").split(",") if n][:50]
    return render(
        request,
        "queue.html",
        base(
            request,
            staff,
            title="留言办理",
            rows=[(t, console.due_class(t, today)) for t in rows],
            phones={t.no: masked_phone(t) for t in rows} if phones else {},
            counts=counts,
            departments=departments,
            all_statuses=ALL_STATUSES,
            f_status=status,
            f_department=department,
            f_q=q,
            f_overdue=overdue == "1",
            f_flagged=flagged == "1",
            page=page,
            more=more,
            query_base=query_without_page(request),
            can_bulk=user.role in ("staff", "supervisor"),
            handlers=assignees(console, user),
            transfer_targets=[d.name for d in console.accounts.departments(active_only=True)],
            bulk_ok=request.query_params.get("ok", ""),
            bulk_failed=bulk_failed,
        ),
    )


@router.get("/api/counts")
def live_counts(staff: Reader, console: ConsoleDep) -> Response:
    """Ticket counts of the user's queue (the same scope as /console/queue): per status, overdue
    and flagged, their sum `all`, and `new` (待受理). Three COUNT queries (one grouped), nothing else."""
    counts = console.tickets.counts(department=visible_departments(staff.user))
    counts["all"] = sum(counts.get(s, 0) for s in STATUSES)
    return JSONResponse(
        {"new": counts.get("待受理", 0), "counts": counts}, headers={"Cache-Control": "no-store"}
    )
