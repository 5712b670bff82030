"""The public handling statistics (/board/stats, no login): for a range of months (default the last
12), the tickets received, answered, answered on time, the working days to the first reply, the
ratings and the reopened tickets, in total, per month, per department and per department and
month, with fluid SVG charts (text alternatives) and the CSV download (/board/stats.csv). The
figures come from `handoff.stats.ticket_stats`, the computation the console dashboard shows too;
only numbers and department names, never a ticket's text or a citizen's data. Query parameters are
validated (a bad month or a range over 24 months: the form again with the error in Chinese, 400). Included by the app
before the board router, whose /board/{no} would otherwise take "stats".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from handoff.console import charts
from handoff.console.web import ConsoleRoute, render
from handoff.dashboard import today_china
from handoff.sla import WorkCalendar
from handoff.stats import (
    COLUMNS,
    Figures,
    TicketStats,
    days_text,
    parse_months,
    pct,
    stats_csv,
    ticket_stats,
)
from knowledge.errors import InvalidInput

SERIES: Final = ("按时答复", "超期答复", "未答复")
SERIES_COLORS: Final = ("#1b7f3b", "#b85600", "#6b7280")  # at least 3:1 against white (WCAG 1.4.11)


def share_items(rows: tuple[tuple[str, Figures], ...]) -> list[tuple[str, tuple[int, int, int], str]]:
    """Chart rows: the received tickets split into answered on time, answered late, not answered."""
    return [
        (label, (f.on_time, f.answered - f.on_time, f.received - f.answered), f"{f.received}件")
        for label, f in rows
    ]


def share_summary(rows: tuple[tuple[str, Figures], ...]) -> str:
    """The chart's text alternative: one sentence per row."""
    return (
        "；".join(
            f"{label}：收到{f.received}件，按时答复{f.on_time}件，超期答复{f.answered - f.on_time}件，"
            f"未答复{f.received - f.answered}件"
            for label, f in rows
        )
        or "区间内没有收到留言"
    )


def month_label(key: str) -> str:
    y, m = key.split("-")
    return f"{y}年{int(m)}月"


def period_label(st: TicketStats) -> str:
    a, b = month_label(st.months[0]), month_label(st.months[-1])
    return a if a == b else f"{a}至{b}"


def table_context(st: TicketStats) -> dict[str, Any]:
    """The rows of the tables in stats_tables.html, for /board/stats and the console dashboard."""
    return {
        "st": st,
        "department_rows": [((d,), f.cells()) for d, f in st.by_department],
        "total_cells": st.total.cells(),
        "stat_columns": COLUMNS,
        "pct": pct,
        "days_text": days_text,
    }


def page_context(st: TicketStats) -> dict[str, Any]:
    """What board_stats.html needs: the tables, the month rows and the charts."""
    months = tuple((month_label(m), f) for m, f in st.by_month)
    depts = st.by_department
    return table_context(st) | {
        "period": period_label(st),
        "month_rows": [((label,), f.cells()) for label, f in months],
        "cell_rows": [
            ((d, month_label(m)), st.cell(d, m).cells()) for d in st.departments for m in st.months
        ],
        "chart_months": charts.share_bars(
            share_items(months),
            SERIES,
            title="各月收到留言的答复情况",
            summary=share_summary(months),
            colors=SERIES_COLORS,
            ident="chart-months",
        ),
        "chart_departments": charts.share_bars(
            share_items(depts),
            SERIES,
            title="各部门收到留言的答复情况",
            summary=share_summary(depts),
            colors=SERIES_COLORS,
            ident="chart-departments",
        ),
    }


def build_stats_router(
    *,
    sessions: sessionmaker[Session],
    calendar: WorkCalendar | None = None,
    today: Callable[[], dt.date] = today_china,
) -> APIRouter:
    """GET /board/stats and /board/stats.csv; `today` is the Beijing date (injected by tests)."""
    cal = calendar or WorkCalendar(sessions)
    router = APIRouter(prefix="/board", route_class=ConsoleRoute, include_in_schema=False)

    def compute(first: str, last: str) -> TicketStats:
        day = today()
        start, end = parse_months(first, last, today=day)
        return ticket_stats(sessions, cal, start, end, today=day)

    def page(request: Request, first: str, last: str) -> Response:
        """The page; a bad range shows the form again with the error in Chinese (400)."""
        base: dict[str, Any] = {"title": "留言办理情况统计", "user": None, "csrf": "", "notice": ""}
        try:
            st = compute(first, last)
        except InvalidInput as exc:
            ctx = base | {"st": None, "error": exc.user_message, "first": first[:7], "last": last[:7]}
            return render(request, "board_stats.html", ctx | {"max_month": f"{today():%Y-%m}"}, 400)
        return render(
            request,
            "board_stats.html",
            base
            | page_context(st)
            | {
                "error": "",
                "first": st.months[0],
                "last": st.months[-1],
                "max_month": f"{st.today:%Y-%m}",
                "query": f"from={st.months[0]}&to={st.months[-1]}",
            },
        )

    @router.get("/stats")
    def stats_page(
        request: Request,
        first: Annotated[str, Query(alias="from", max_length=20)] = "",
        last: Annotated[str, Query(alias="to", max_length=20)] = "",
    ) -> Response:
        return page(request, first, last)

    @router.get("/stats.csv")
    def stats_export(
        request: Request,
        first: Annotated[str, Query(alias="from", max_length=20)] = "",
        last: Annotated[str, Query(alias="to", max_length=20)] = "",
    ) -> Response:
        try:
            st = compute(first, last)
        except InvalidInput:
            return page(request, first, last)
        name = f"liuyan-banli-tongji-{st.months[0]}-{st.months[-1]}.csv"
        return StreamingResponse(
            stats_csv(st),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router


__all__ = ["build_stats_router", "page_context", "table_context"]
