"""Console routes of the weekly unanswered-questions reports (/console/weekly): the list of weeks
and units (admins and supervisors see every unit and the overview with the report runs, staff and
readers their own units), one unit's report page, its chart, its download as HTML or xlsx,
"生成问答草稿" for one topic (an FAQ draft, made once per week and question), and the 专题 cases
opened when questions concentrate (listed on the weekly page, closed by their unit or an admin).
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.deps import PREFIX, ConsoleDep, Staff, WeeklyReader, base
from handoff.console.web import ConsoleRoute, render
from handoff.special import SpecialTopics
from handoff.weekly import (
    find_topic,
    may_see_unit,
    previous_week,
    recent_weeks,
    topic_draft_fields,
    visible_units,
    week_tag,
)
from knowledge.errors import InvalidInput, NotFound
from knowledge.gaps import (
    OVERVIEW,
    REASONS,
    ROUTE_SOURCES,
    UNASSIGNED,
    parse_week,
    render_html,
    render_xlsx,
    safe_name,
)

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

WeekQ = Annotated[str, Query(max_length=10)]
UnitQ = Annotated[str, Query(max_length=200)]


def report_scope(staff: Staff, week: str, unit: str) -> tuple[str, str | None]:
    """The week's label and the unit asked for (None: the overview), or 404 when hidden."""
    label = parse_week(week).label
    name = unit.strip() or None
    if name is None and staff.user.role not in ("admin", "supervisor"):
        own = list(staff.user.departments)
        if len(own) != 1:
            raise InvalidInput("请选择单位", "weekly report without a unit for a unit user")
        name = own[0]
    if not may_see_unit(staff.user.role, staff.user.departments, name):
        raise NotFound("未找到该单位的报告", f"unit {name!r} hidden from {staff.user.username}")
    return label, name


@router.get("/weekly")
def weekly_list(staff: WeeklyReader, console: ConsoleDep, request: Request, week: WeekQ = "") -> Response:
    report_runs = console.report_runs
    label = parse_week(week).label if week else previous_week()
    analysis = console.weekly.analysis(label)
    overview = analysis.report(None)
    allowed = set(visible_units(staff.user.role, staff.user.departments, analysis.units))
    rows = [r for r in overview.units if r[0] in allowed]
    # A unit user's own units appear even in a week without questions for them.
    if staff.user.role not in ("admin", "supervisor"):
        listed = {r[0] for r in rows}
        rows += [(u, 0, 0) for u in staff.user.departments if u not in listed]
    weeks = recent_weeks(12)
    if label not in weeks:
        weeks.append(label)
    runs = list(report_runs()) if report_runs and staff.user.role in ("admin", "supervisor") else []
    everyone = staff.user.role in ("admin", "supervisor")
    cases = _special(console).cases(units=None if everyone else tuple(staff.user.departments))
    return render(
        request,
        "weekly.html",
        base(
            request,
            staff,
            title="未解答问题周报",
            week=label,
            weeks=weeks,
            current=recent_weeks(1)[0],
            period=analysis.period,
            rows=rows,
            overview=overview if staff.user.role in ("admin", "supervisor") else None,
            runs=runs[:8],
            schedule=console.report_schedule,
            overview_name=OVERVIEW,
            cases=cases,
            may_close={c.no: c.status == "open" and staff.user.may_draft_faq(c.unit) for c in cases},
            done=request.query_params.get("done", ""),
        ),
    )


def _special(console: ConsoleDep) -> SpecialTopics:
    return SpecialTopics(console.sessions, console.kb, console.calendar)


@router.post("/weekly/special/{no}/close")
def special_close(staff: WeeklyReader, console: ConsoleDep, no: str) -> Response:
    service = _special(console)
    case = next((c for c in service.cases() if c.no == no), None)
    if case is None or not may_see_unit(staff.user.role, staff.user.departments, case.unit):
        raise NotFound("未找到该专题", f"special case {no!r} hidden from {staff.user.username}")
    if not staff.user.may_draft_faq(case.unit):
        raise InvalidInput("只有承办单位或管理员可以办结专题", f"{staff.user.username} may not close {no}")
    service.close(no, by=staff.user.username)
    console.record(staff, "special_close", no, unit=case.unit, label=case.label)
    return RedirectResponse("/console/weekly?done=special_closed", status_code=303)


@router.get("/weekly/{week}")
def weekly_view(
    staff: WeeklyReader, console: ConsoleDep, request: Request, week: str, unit: UnitQ = ""
) -> Response:
    label, name = report_scope(staff, week, unit)
    analysis = console.weekly.analysis(label)
    report = analysis.report(name)
    drafted: dict[str, str] = {}
    for rec in console.faqs.list(tag=week_tag(label), limit=500):
        drafted[rec.question] = rec.id
    return render(
        request,
        "weekly_report.html",
        base(
            request,
            staff,
            title=report.title,
            r=report,
            week=label,
            unit=name or "",
            reasons=REASONS,
            routes=ROUTE_SOURCES,
            drafted=drafted,
            unassigned=UNASSIGNED,
            overview_name=OVERVIEW,
            can_draft={
                t.key: staff.user.may_draft_faq(None if t.unit == UNASSIGNED else t.unit)
                for t in report.topics
            },
            draft_topics={d.topic_key for d in report.drafts},
            query=f"unit={quote(name)}" if name else "",
        ),
    )


@router.get("/weekly/{week}/chart.png")
def weekly_chart(staff: WeeklyReader, console: ConsoleDep, week: str, unit: UnitQ = "") -> Response:
    label, name = report_scope(staff, week, unit)
    return Response(
        console.weekly.chart(label, name),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get("/weekly/{week}/download")
def weekly_download(
    staff: WeeklyReader,
    console: ConsoleDep,
    week: str,
    unit: UnitQ = "",
    format: Annotated[str, Query(max_length=4)] = "html",
) -> Response:
    weekly_reports = console.weekly
    label, name = report_scope(staff, week, unit)
    report = weekly_reports.analysis(label).report(name)
    filename = f"{safe_name(label)}_{safe_name(name or OVERVIEW + '总览')}.{format}"
    if format == "html":
        body = render_html(report, weekly_reports.chart(label, name)).encode("utf-8")
        media = "text/html; charset=utf-8"
    elif format == "xlsx":
        body = render_xlsx(report)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        raise InvalidInput("格式应为 html 或 xlsx", f"bad report format {format!r}")
    ascii_name = f"report-{safe_name(label)}.{format}"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        },
    )


@router.post("/weekly/{week}/draft")
def weekly_draft(
    staff: WeeklyReader,
    console: ConsoleDep,
    week: str,
    topic: Annotated[str, Form(max_length=10)] = "",
    question: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    faq_store = console.faqs
    label = parse_week(week).label
    analysis = console.weekly.analysis(label)
    t = find_topic(analysis, topic, question)
    unit = None if t.unit == UNASSIGNED else t.unit
    if not may_see_unit(staff.user.role, staff.user.departments, t.unit) or not staff.user.may_draft_faq(
        unit
    ):
        raise NotFound("未找到该主题", f"topic {t.key} of {t.unit!r} hidden from {staff.user.username}")
    fields = topic_draft_fields(analysis, t)
    for rec in faq_store.list(tag=week_tag(label), limit=500):
        if rec.question == fields["question"]:  # made already (by anyone): open it
            return RedirectResponse(f"/console/faqs/{rec.id}", status_code=303)
    rec = faq_store.add(by=staff.user.username, status="draft", **fields)
    console.record(
        staff,
        "faq_draft",
        rec.id,
        week=label,
        topic=t.key,
        question=rec.question,
        unit=rec.unit or "",
        answer_from_ticket=bool(fields["answer"]),
    )
    return RedirectResponse(f"/console/faqs/{rec.id}?done=draft", status_code=303)
