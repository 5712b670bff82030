"""Console routes of the figures: 办理统计 (/console/reports: tickets per department by status,
overdue, flagged, ratings, satisfaction and the department's time limit) and the dashboard of
questions and tickets over a date range (/console/dashboard, with its server-drawn SVG charts)
with its CSV export.
"""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.console import charts
from handoff.console.deps import PREFIX, Analyst, ConsoleDep, Reporter, base, visible_departments
from handoff.console.stats import table_context
from handoff.console.web import ConsoleRoute, render
from handoff.dashboard import CHANNEL_LABELS, OUTCOME_LABELS, build_dashboard, dashboard_csv, parse_range
from handoff.models import Ticket
from handoff.tickets import OPEN_STATUSES, RATINGS, STATUSES, TicketService
from knowledge.models import CHINA_TZ

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

DayQ = Annotated[str, Query(max_length=10)]


@router.get("/reports")
def reports(staff: Reporter, console: ConsoleDep, request: Request) -> Response:
    scope = visible_departments(staff.user)
    return render(
        request,
        "reports.html",
        base(request, staff, title="办理统计", rows=_report_rows(console.sessions, scope, console.tickets)),
    )


@router.get("/dashboard")
def dashboard(
    staff: Analyst, console: ConsoleDep, request: Request, start: DayQ = "", end: DayQ = ""
) -> Response:
    first, last = parse_range(start, end)
    d = build_dashboard(console.sessions, console.calendar, first, last)
    day_labels = [f"{day:%m-%d}" for day, _ in d.daily]
    names = [CHANNEL_LABELS.get(c, c) for c in d.channels]
    ctx = base(
        request,
        staff,
        title="数据看板",
        d=d,
        start=f"{first:%Y-%m-%d}",
        end=f"{last:%Y-%m-%d}",
        outcome_labels=OUTCOME_LABELS,
        channel_labels=CHANNEL_LABELS,
        export_query=f"start={first:%Y-%m-%d}&end={last:%Y-%m-%d}",
        **table_context(d.tickets),
        chart_daily=charts.stacked_columns(
            day_labels,
            names or ["提问"],
            [v or (0,) for _, v in d.daily],
            title="每日提问量（按渠道）",
            width=1160,
            height=260,
        ),
        chart_outcomes=charts.horizontal_bars(
            [(OUTCOME_LABELS[k], d.rate(k), f"{d.rate(k) * 100:.1f}%（{n}）") for k, n in d.outcomes],
            title="答复结果占比",
            percent=True,
            width=560,
            label_width=120,
        ),
        chart_top=charts.horizontal_bars(
            [(f.question, f.count, str(f.count)) for f in d.top_faqs],
            title="热门问答",
            color=charts.PALETTE[2],
            width=1160,
            label_width=460,
        ),
        chart_tickets=charts.stacked_columns(
            day_labels,
            ["收到留言"],
            [(n,) for _, n in d.tickets.daily_received],
            title="每日收到留言",
            colors=(charts.PALETTE[1],),
            width=560,
            height=190,
        ),
    )
    return render(request, "dashboard.html", ctx)


@router.get("/dashboard.csv")
def dashboard_export(staff: Analyst, console: ConsoleDep, start: DayQ = "", end: DayQ = "") -> Response:
    first, last = parse_range(start, end)
    d = build_dashboard(console.sessions, console.calendar, first, last)
    name = f"dashboard-{first:%Y%m%d}-{last:%Y%m%d}.csv"
    return StreamingResponse(
        dashboard_csv(d),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _report_rows(
    sessions: sessionmaker[Session], scope: list[str] | None, tickets: TicketService
) -> list[dict[str, Any]]:
    today = dt.datetime.now(CHINA_TZ).date()
    cols = [
        Ticket.department,
        func.count(),
        *[func.sum(case((Ticket.status == st, 1), else_=0)) for st in STATUSES],
        func.sum(case((Ticket.status.in_(OPEN_STATUSES) & (Ticket.due_date < today), 1), else_=0)),
        func.sum(case((Ticket.flagged.is_(True), 1), else_=0)),
        *[func.sum(case((Ticket.rating == r, 1), else_=0)) for r in RATINGS],
        func.sum(case((Ticket.published.is_(True), 1), else_=0)),
    ]
    stmt = select(*cols).group_by(Ticket.department).order_by(Ticket.department)
    if scope is not None:
        stmt = stmt.where(Ticket.department.in_(scope))
    rows: list[dict[str, Any]] = []
    with sessions() as s:
        for r in s.execute(stmt).all():
            values = [int(v or 0) for v in r[1:]]
            total, rest = values[0], values[1:]
            n = len(STATUSES)
            by_status = dict(zip(STATUSES, rest[:n], strict=True))
            overdue, flagged = rest[n], rest[n + 1]
            ratings = dict(zip(RATINGS, rest[n + 2 : n + 5], strict=True))
            rated = sum(ratings.values())
            rows.append(
                {
                    "department": r[0],
                    "total": total,
                    "status": by_status,
                    "overdue": overdue,
                    "flagged": flagged,
                    "ratings": ratings,
                    "published": rest[n + 5],
                    "satisfaction": f"{(ratings['满意'] + ratings['基本满意']) * 100 / rated:.0f}%"
                    if rated
                    else "—",
                    "limit": tickets.limit_for(r[0]),
                }
            )
    return rows
