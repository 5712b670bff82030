"""Console routes for administrators: users (add, edit roles, departments and activity, set a
password), departments (the transfer targets; add, deactivate), reply templates (add, edit,
delete), sensitive words (add, delete) and the audit log (filtered, paged, exported as CSV). Every change is audited.
"""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlalchemy import select

from handoff.console.audit import ACTION_LABELS
from handoff.console.auth import ROLES
from handoff.console.deps import (
    PREFIX,
    Admin,
    Console,
    ConsoleDep,
    Staff,
    base,
    query_without_page,
    split_lines,
)
from handoff.console.web import ConsoleRoute, render
from handoff.models import ReplyTemplate
from knowledge.db import MAX_ID, transaction
from knowledge.errors import InvalidInput, NotFound, PolicybotError
from knowledge.models import CHINA_TZ
from knowledge.sensitive import SensitiveWords

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

RowId = Annotated[
    int, Path(ge=1, le=MAX_ID)
]  # a row id in a URL; larger ones are a 400, not an OverflowError
TplTitle = Annotated[str, Form(max_length=200)]
TplBody = Annotated[str, Form(max_length=6000)]
AuditQ = Annotated[str, Query(max_length=100)]


def _text(value: str, limit: int) -> str:
    return (value or "").strip()[:limit]


# --- users ---------------------------------------------------------------------------------------------


@router.get("/admin/users")
def users_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return render(
        request,
        "users.html",
        base(
            request,
            staff,
            title="用户管理",
            users=console.accounts.users(),
            roles=ROLES,
            departments=console.known_departments(),
        ),
    )


def users_error(console: Console, request: Request, staff: Staff, message: str) -> Response:
    ctx = base(
        request,
        staff,
        title="用户管理",
        users=console.accounts.users(),
        roles=ROLES,
        departments=console.known_departments(),
    )
    ctx["error"] = message
    return render(request, "users.html", ctx, status_code=400)


@router.post("/admin/users")
def user_add(
    staff: Admin,
    console: ConsoleDep,
    request: Request,
    username: Annotated[str, Form(max_length=60)] = "",
    display_name: Annotated[str, Form(max_length=60)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    departments: Annotated[str, Form(max_length=3000)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=250)] = "",
) -> Response:
    try:
        user = console.accounts.add_user(
            username,
            password,
            role=role,
            departments=split_lines(departments),
            display_name=display_name,
            email=email,
            by=staff.user.username,
        )
    except PolicybotError as exc:
        return users_error(console, request, staff, exc.user_message)
    console.record(staff, "user_add", user.username, role=user.role, departments=list(user.departments))
    return RedirectResponse("/console/admin/users?done=user", status_code=303)


@router.post("/admin/users/{user_id}")
def user_edit(
    staff: Admin,
    console: ConsoleDep,
    request: Request,
    user_id: RowId,
    display_name: Annotated[str, Form(max_length=60)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    departments: Annotated[str, Form(max_length=3000)] = "",
    active: Annotated[str, Form(max_length=5)] = "",
    email: Annotated[str, Form(max_length=250)] = "",
) -> Response:
    try:
        user = console.accounts.update_user(
            user_id,
            role=role,
            departments=split_lines(departments),
            display_name=display_name,
            active=active == "1",
            email=email,
        )
    except PolicybotError as exc:
        return users_error(console, request, staff, exc.user_message)
    console.record(
        staff,
        "user_edit",
        user.username,
        role=user.role,
        departments=list(user.departments),
        active=user.active,
        email=user.email,
    )
    return RedirectResponse("/console/admin/users?done=user", status_code=303)


@router.post("/admin/users/{user_id}/password")
def user_password(
    staff: Admin,
    console: ConsoleDep,
    request: Request,
    user_id: RowId,
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    accts = console.accounts
    try:
        user = accts.set_password(accts.get_user(user_id).username, password)
    except PolicybotError as exc:
        return users_error(console, request, staff, exc.user_message)
    console.record(staff, "user_password", user.username)
    return RedirectResponse("/console/admin/users?done=password", status_code=303)


# --- departments -----------------------------------------------------------------------------------------


@router.get("/admin/departments")
def departments_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return render(
        request,
        "departments.html",
        base(
            request,
            staff,
            title="部门管理",
            departments=console.accounts.departments(),
            known=console.known_departments(),
        ),
    )


@router.post("/admin/departments")
def department_add(
    staff: Admin, console: ConsoleDep, request: Request, name: Annotated[str, Form(max_length=300)] = ""
) -> Response:
    accts = console.accounts
    try:
        dept = accts.add_department(name)
    except PolicybotError as exc:
        ctx = base(
            request,
            staff,
            title="部门管理",
            departments=accts.departments(),
            known=console.known_departments(),
        )
        ctx["error"] = exc.user_message
        return render(request, "departments.html", ctx, status_code=400)
    console.record(staff, "department_add", dept.name)
    return RedirectResponse("/console/admin/departments?done=department", status_code=303)


@router.post("/admin/departments/{dept_id}")
def department_edit(
    staff: Admin, console: ConsoleDep, dept_id: RowId, active: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    dept = console.accounts.set_department_active(dept_id, active == "1")
    console.record(staff, "department_edit", dept.name, active=dept.active)
    return RedirectResponse("/console/admin/departments?done=department", status_code=303)


# --- reply templates -----------------------------------------------------------------------------------


@router.get("/admin/templates")
def templates_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    with console.sessions() as s:
        rows = list(s.execute(select(ReplyTemplate).order_by(ReplyTemplate.title)).scalars())
    return render(
        request,
        "templates.html",
        base(request, staff, title="答复模板", rows=rows, departments=console.known_departments()),
    )


def save_template(
    console: Console, staff: Staff, tid: int | None, title: str, body: str, department: str
) -> Response:
    title, body, department = _text(title, 100), _text(body, 5000), _text(department, 200)
    if not title or not body:
        raise InvalidInput("请填写模板名称和内容", "template title/body empty")
    with transaction(console.sessions) as s:
        row = ReplyTemplate() if tid is None else s.get(ReplyTemplate, tid)
        if row is None:
            raise NotFound("未找到该模板", f"template {tid} not found")
        row.title, row.body, row.department = title, body, department
        row.updated_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        row.updated_by = staff.user.username
        s.add(row)
    console.record(staff, "template_add" if tid is None else "template_edit", title)
    return RedirectResponse("/console/admin/templates?done=template", status_code=303)


@router.post("/admin/templates")
def template_add(
    staff: Admin, console: ConsoleDep, title: TplTitle = "", body: TplBody = "", department: TplTitle = ""
) -> Response:
    return save_template(console, staff, None, title, body, department)


@router.post("/admin/templates/{tid}")
def template_edit(
    staff: Admin,
    console: ConsoleDep,
    tid: RowId,
    title: TplTitle = "",
    body: TplBody = "",
    department: TplTitle = "",
) -> Response:
    return save_template(console, staff, tid, title, body, department)


@router.post("/admin/templates/{tid}/delete")
def template_delete(staff: Admin, console: ConsoleDep, tid: RowId) -> Response:
    with transaction(console.sessions) as s:
        row = s.get(ReplyTemplate, tid)
        if row is None:
            raise NotFound("未找到该模板", f"template {tid} not found")
        title = row.title
        s.delete(row)
    console.record(staff, "template_delete", title)
    return RedirectResponse("/console/admin/templates?done=template", status_code=303)


# --- sensitive words -------------------------------------------------------------------------------------


def _sensitive_page(console: Console, request: Request, staff: Staff, error: str = "") -> Response:
    ctx = base(request, staff, title="敏感词", words=SensitiveWords(console.sessions).list())
    if error:
        ctx["error"] = error
    return render(request, "sensitive.html", ctx, status_code=400 if error else 200)


@router.get("/admin/sensitive")
def sensitive_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return _sensitive_page(console, request, staff)


@router.post("/admin/sensitive")
def sensitive_add(
    staff: Admin, console: ConsoleDep, request: Request, word: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    try:
        added = SensitiveWords(console.sessions).add(word, by=staff.user.username)
    except PolicybotError as exc:
        return _sensitive_page(console, request, staff, exc.user_message)
    console.record(staff, "sensitive_add", added)
    return RedirectResponse("/console/admin/sensitive?done=sensitive", status_code=303)


@router.post("/admin/sensitive/delete")
def sensitive_delete(
    staff: Admin, console: ConsoleDep, request: Request, word: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    try:
        SensitiveWords(console.sessions).delete(word)
    except PolicybotError as exc:
        return _sensitive_page(console, request, staff, exc.user_message)
    console.record(staff, "sensitive_delete", word)
    return RedirectResponse("/console/admin/sensitive?done=sensitive", status_code=303)


# --- audit log -------------------------------------------------------------------------------------------


def audit_filters(actor: str, action: str, target: str, since: str, until: str) -> dict[str, Any]:
    try:
        return {
            "actor": actor or None,
            "action": action or None,
            "target": target or None,
            "since": dt.date.fromisoformat(since) if since else None,
            "until": dt.date.fromisoformat(until) if until else None,
        }
    except ValueError:
        raise InvalidInput("日期格式应为 YYYY-MM-DD", "bad audit date filter") from None


@router.get("/audit")
def audit_page(
    staff: Admin,
    console: ConsoleDep,
    request: Request,
    actor: AuditQ = "",
    action: AuditQ = "",
    target: AuditQ = "",
    since: AuditQ = "",
    until: AuditQ = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    filters = audit_filters(actor, action, target, since, until)
    rows = console.audit.list(**filters, limit=101, offset=(page - 1) * 100)
    return render(
        request,
        "audit.html",
        base(
            request,
            staff,
            title="审计日志",
            rows=rows[:100],
            more=len(rows) > 100,
            page=page,
            actions=ACTION_LABELS,
            f_actor=actor,
            f_action=action,
            f_target=target,
            f_since=since,
            f_until=until,
            query_base=query_without_page(request),
            export_query=str(request.url.query),
        ),
    )


@router.get("/audit.csv")
def audit_csv(
    staff: Admin,
    console: ConsoleDep,
    actor: AuditQ = "",
    action: AuditQ = "",
    target: AuditQ = "",
    since: AuditQ = "",
    until: AuditQ = "",
) -> Response:
    filters = audit_filters(actor, action, target, since, until)
    stamp = dt.datetime.now(CHINA_TZ).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        console.audit.export_csv(**filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
