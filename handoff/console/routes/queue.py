"""Console route of the ticket queue (/console/queue): the tickets of the departments the user may
read, filtered by status, department, text, overdue and flagged, paged, with counts per status and
the due-date class of each row; and its live counts (/console/api/counts, JSON, polled by live.js
for the navigation badge, the queue's counts and its "有 N 条新留言" bar).
"""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from handoff.console.deps import PREFIX, ConsoleDep, Reader, base, query_without_page, visible_departments
from handoff.console.web import ConsoleRoute, render
from handoff.tickets import STATUSES
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
    tickets, config = console.tickets, console.config
    allowed = visible_departments(staff.user)
    scope: list[str] | None = allowed
    if department:
        if allowed is not None and department not in allowed:
            raise HTTPException(403, "您无权查看该部门的留言")
        scope = [department]
    if status and status not in STATUSES:
        raise InvalidInput("未知的办理状态", f"unknown status {status!r}")
    rows = tickets.list(
        status=status or None,
        department=scope,
        text=q or None,
        overdue=True if overdue == "1" else None,
        flagged=True if flagged == "1" else None,
        limit=config.page_size + 1,
        offset=(page - 1) * config.page_size,
    )
    today = dt.datetime.now(CHINA_TZ).date()
    more = len(rows) > config.page_size
    rows = rows[: config.page_size]
    counts = tickets.counts(department=scope)
    departments = sorted(allowed) if allowed is not None else console.known_departments()
    return render(
        request,
        "queue.html",
        base(
            request,
            staff,
            title="留言办理",
            rows=[(t, console.due_class(t, today)) for t in rows],
            counts=counts,
            departments=departments,
            f_status=status,
            f_department=department,
            f_q=q,
            f_overdue=overdue == "1",
            f_flagged=flagged == "1",
            page=page,
            more=more,
            query_base=query_without_page(request),
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
