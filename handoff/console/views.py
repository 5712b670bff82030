"""The staff console router (/console): login and logout, queues, the ticket page and its actions
(assign, reply, note, transfer, close, reopen, publish, promote to an FAQ draft), FAQ draft review
and publication, reports (办理统计, the weekly unanswered-questions reports with "生成问答草稿" per
topic, and the dashboard of questions and tickets with CSV export), and the admin pages (users, departments, reply templates, audit log).

Every route declares the roles it admits through `Guard`; ticket routes check the ticket's
department on top (another department's ticket is a 404, as if it did not exist). Forms carry the
session's CSRF token; changes use the ticket's version so two staff members never overwrite each
other's reply. Every login, contact-data view, reply, transfer, publication and FAQ change is
written to the audit log with the actor and the client IP.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from handoff.console import charts
from handoff.console.audit import ACTION_LABELS, AuditLog
from handoff.console.auth import ROLE_LABELS, ROLES, Accounts, LockedOut, LoginFailed, User
from handoff.console.config import ConsoleConfig
from handoff.console.web import (
    HERE,
    STATIC_FILES,
    ConsoleRoute,
    Guard,
    PreCsrf,
    Staff,
    client_ip,
    render,
    safe_next,
)
from handoff.dashboard import CHANNEL_LABELS, OUTCOME_LABELS, build_dashboard, dashboard_csv, parse_range
from handoff.models import ReplyTemplate, Ticket
from handoff.sla import WorkCalendar
from handoff.tickets import (
    CLOSED,
    IN_PROGRESS,
    OPEN_STATUSES,
    PENDING,
    RATINGS,
    REPLIED,
    STATUSES,
    EventView,
    TicketService,
    TicketView,
)
from handoff.weekly import (
    WeeklyReports,
    find_topic,
    may_see_unit,
    previous_week,
    recent_weeks,
    topic_draft_fields,
    visible_units,
    week_tag,
)
from knowledge.answer import KnowledgeBase
from knowledge.db import MAX_ID, transaction
from knowledge.errors import Conflict, InvalidInput, NotFound, PolicybotError
from knowledge.gaps import OVERVIEW, REASONS, ROUTE_SOURCES, UNASSIGNED, parse_week
from knowledge.models import CHINA_TZ, Faq
from knowledge.report import render_html, render_xlsx, safe_name
from knowledge.store import FaqRecord, FaqStore

ALL: Final = ROLES
HANDLERS: Final = ("staff", "supervisor")
READERS: Final = ("staff", "supervisor", "reader")
FAQ_EDITORS: Final = ("admin", "staff", "supervisor")
REPORTERS: Final = ("supervisor", "reader")
FAQ_DRAFTERS: Final = ALL  # readers may edit drafts of their unit; publishing stays with FAQ_EDITORS
WEEKLY: Final = ALL  # admins and supervisors see every unit, staff and readers their own
DASHBOARD: Final = ("admin", "supervisor")

DONE: Final = {
    "assign": "已受理，您现在是该留言的办理人",
    "reply": "答复已保存，正通过原渠道推送给留言人",
    "note": "内部备注已添加",
    "close": "留言已办结",
    "reopen": "留言已重新办理",
    "publish": "已在公开留言板发布",
    "unpublish": "已从公开留言板撤下",
    "transfer": "留言已转办",
    "draft": "已生成问答草稿，请审核后发布",
    "saved": "已保存",
    "faq_published": "问答已发布，机器人已即时使用新答案",
    "user": "用户已保存",
    "password": "密码已修改",
    "department": "部门已保存",
    "template": "答复模板已保存",
}
STATUS_CLASS: Final = {PENDING: "pending", IN_PROGRESS: "progress", REPLIED: "replied", CLOSED: "closed"}
_F = TypeVar("_F", bound=Callable[..., Any])
FaqSearch = Annotated[str, Query(max_length=200)]
RowId = Annotated[
    int, Path(ge=1, le=MAX_ID)
]  # a row id in a URL; larger ones are a 400, not an OverflowError


def _text(value: str, limit: int) -> str:
    return (value or "").strip()[:limit]


def build_console_router(
    *,
    sessions: sessionmaker[Session],
    tickets: TicketService,
    kb: KnowledgeBase,
    config: ConsoleConfig,
    faqs: FaqStore | None = None,
    calendar: WorkCalendar | None = None,
    accounts: Accounts | None = None,
    audit: AuditLog | None = None,
    weekly: WeeklyReports | None = None,
    report_runs: Callable[[], Sequence[Any]] | None = None,
    report_schedule: str = "",
) -> APIRouter:
    """The /console router. The app passes the shared services; nothing here reads settings."""
    faq_store = faqs or kb.faqs
    work_calendar = calendar or WorkCalendar(sessions)
    accts = accounts or Accounts(sessions, config)
    log = audit or AuditLog(sessions)
    weekly_reports = weekly or WeeklyReports(sessions, kb)
    guard = Guard(accts, config)
    pre = PreCsrf(config)
    router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
    router.guard = guard  # type: ignore[attr-defined]  # the role table, for tests and docs

    def route(method: str, path: str, roles: Sequence[str] | None) -> Callable[[_F], _F]:
        """Register an endpoint with its admitted roles (None: public)."""
        guard.route_roles[(method, "/console" + path)] = frozenset(roles or ())
        register: Callable[[_F], _F] = router.api_route(path, methods=[method])
        return register

    AnyUser = Annotated[Staff, Depends(guard(*ALL))]
    Reader = Annotated[Staff, Depends(guard(*READERS))]
    Handler = Annotated[Staff, Depends(guard(*HANDLERS))]
    FaqEditor = Annotated[Staff, Depends(guard(*FAQ_EDITORS))]
    FaqDrafter = Annotated[Staff, Depends(guard(*FAQ_DRAFTERS))]
    WeeklyReader = Annotated[Staff, Depends(guard(*WEEKLY))]
    Analyst = Annotated[Staff, Depends(guard(*DASHBOARD))]
    Reporter = Annotated[Staff, Depends(guard(*REPORTERS))]
    Admin = Annotated[Staff, Depends(guard("admin"))]

    def base(request: Request, staff: Staff | None, **extra: Any) -> dict[str, Any]:
        done = request.query_params.get("done", "")
        ctx: dict[str, Any] = {
            "user": staff.user if staff else None,
            "csrf": staff.csrf if staff else "",
            "notice": DONE.get(done, ""),
            "error": "",
            "role_labels": ROLE_LABELS,
            "status_class": STATUS_CLASS,
            "statuses": STATUSES,
        }
        ctx.update(extra)
        return ctx

    def record(staff: Staff, action: str, target: str = "", **detail: Any) -> None:
        log.record(
            action, actor=staff.user.username, role=staff.user.role, ip=staff.ip, target=target, detail=detail
        )

    # --- static, login, logout -------------------------------------------------------------------

    @route("GET", "/static/{name}", None)
    def static(name: str) -> Response:
        media = STATIC_FILES.get(name)
        if media is None:
            raise HTTPException(404, "未找到该文件")
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=media,
            headers={"Cache-Control": "public, max-age=300"},
        )

    @route("GET", "/login", None)
    def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "") -> Response:
        return render(
            request,
            "login.html",
            base(
                request,
                None,
                title="工作人员登录",
                form_token=pre.form_token(request),
                next=safe_next(next),
                username="",
            ),
        )

    @route("POST", "/login", None)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=200)] = "",
        token: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        pre.check(request, token)
        ip = client_ip(request, config.trusted_proxies)
        name = username.strip().lower()[:50]
        try:
            user, cookie, _csrf = accts.login(name, password, ip=ip)
        except (LoginFailed, LockedOut) as exc:
            action = "login_locked" if isinstance(exc, LockedOut) else "login_failed"
            log.record(action, actor=name or "-", ip=ip, target=name)
            ctx = base(
                request,
                None,
                title="工作人员登录",
                form_token=pre.form_token(request),
                next=safe_next(next),
                username=name,
            )
            ctx["error"] = exc.user_message
            return render(request, "login.html", ctx, status_code=429 if isinstance(exc, LockedOut) else 400)
        log.record("login", actor=user.username, role=user.role, ip=ip, target=user.username)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            config.session_cookie,
            cookie,
            httponly=True,
            samesite="strict",
            secure=config.cookie_secure,
            path="/",
            max_age=int(config.absolute_timeout.total_seconds()),
        )
        return response

    @route("POST", "/logout", ALL)
    def logout(staff: AnyUser, request: Request) -> Response:
        accts.logout(request.cookies.get(config.session_cookie))
        record(staff, "logout", staff.user.username)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(
            config.session_cookie, path="/", secure=config.cookie_secure, httponly=True, samesite="strict"
        )
        return response

    @route("GET", "/", ALL)
    def home(staff: AnyUser) -> Response:
        target = "/console/admin/users" if staff.user.role == "admin" else "/console/queue"
        if staff.user.role == "supervisor":
            target = "/console/queue?flagged=1"
        return RedirectResponse(target, status_code=303)

    @route("GET", "/account", ALL)
    def account_page(staff: AnyUser, request: Request) -> Response:
        return render(request, "account.html", base(request, staff, title="修改密码"))

    @route("POST", "/account", ALL)
    def account_change(
        staff: AnyUser,
        request: Request,
        current: Annotated[str, Form(max_length=200)] = "",
        new: Annotated[str, Form(max_length=200)] = "",
        repeat: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        ctx = base(request, staff, title="修改密码")
        try:
            if not accts.verify_password(staff.user.id, current):
                raise InvalidInput("当前密码不正确", "wrong current password")
            if new != repeat:
                raise InvalidInput("两次输入的新密码不一致", "passwords differ")
            accts.set_password(staff.user.username, new)
        except PolicybotError as exc:
            ctx["error"] = exc.user_message
            return render(request, "account.html", ctx, status_code=400)
        record(staff, "password", staff.user.username)
        response = RedirectResponse("/console/login?done=password", status_code=303)
        response.delete_cookie(
            config.session_cookie, path="/", secure=config.cookie_secure, httponly=True, samesite="strict"
        )
        return response

    # --- queues ----------------------------------------------------------------------------------

    def visible_departments(user: User) -> list[str] | None:
        return None if user.sees_all() else list(user.departments)

    def known_departments() -> list[str]:
        names = {d.name for d in accts.departments(active_only=True)}
        with sessions() as s:
            names |= {str(d) for d in s.execute(select(Ticket.department).distinct()).scalars() if d}
            names |= {str(u) for u in s.execute(select(Faq.unit).distinct()).scalars() if u}
        return sorted(names)

    def due_class(t: TicketView, today: dt.date) -> str:
        if t.overdue:
            return "overdue"
        if t.is_open and work_calendar.working_days_between(today, t.due_date) <= 1:
            return "due-soon"
        return ""

    @route("GET", "/queue", READERS)
    def queue(
        staff: Reader,
        request: Request,
        status: Annotated[str, Query(max_length=10)] = "",
        department: Annotated[str, Query(max_length=200)] = "",
        q: Annotated[str, Query(max_length=100)] = "",
        overdue: Annotated[str, Query(max_length=1)] = "",
        flagged: Annotated[str, Query(max_length=1)] = "",
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    ) -> Response:
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
        departments = sorted(allowed) if allowed is not None else known_departments()
        return render(
            request,
            "queue.html",
            base(
                request,
                staff,
                title="留言办理",
                rows=[(t, due_class(t, today)) for t in rows],
                counts=counts,
                departments=departments,
                f_status=status,
                f_department=department,
                f_q=q,
                f_overdue=overdue == "1",
                f_flagged=flagged == "1",
                page=page,
                more=more,
                query_base=_query_without_page(request),
            ),
        )

    # --- ticket page -------------------------------------------------------------------------------

    def readable(staff: Staff, no: str) -> TicketView:
        t = tickets.get(no)
        if not staff.user.may_read_ticket(t.department):
            raise NotFound("未找到该留言", f"ticket {no} hidden from {staff.user.username}")
        return t

    def handleable(staff: Staff, no: str) -> TicketView:
        t = readable(staff, no)
        if not staff.user.may_handle_ticket(t.department):
            raise NotFound("未找到该留言", f"ticket {no} not handled by {staff.user.username}")
        return t

    def ticket_page(
        request: Request,
        staff: Staff,
        no: str,
        *,
        error: str = "",
        status_code: int = 200,
        reply_text: str | None = None,
    ) -> Response:
        t = readable(staff, no)
        events = tickets.events(t.no)
        show_contact = staff.user.may_see_contact(t.department)
        has_contact = bool(t.contact_name or t.contact_phone)
        if show_contact and has_contact:
            record(staff, "contact_view", t.no)
        candidates = _candidates(kb, t)
        with sessions() as s:
            tpl_rows = (
                s.execute(
                    select(ReplyTemplate)
                    .where(ReplyTemplate.department.in_(["", t.department]))
                    .order_by(ReplyTemplate.title)
                )
                .scalars()
                .all()
            )
            reply_templates = [(r.title, r.body) for r in tpl_rows]
        ctx = base(
            request,
            staff,
            title=f"留言 {t.no}",
            t=t,
            events=events,
            delivery=_delivery(events),
            show_contact=show_contact,
            has_contact=has_contact,
            candidates=candidates,
            can_handle=staff.user.may_handle_ticket(t.department),
            departments=[d.name for d in accts.departments(active_only=True)],  # transfer targets
            reply_templates=reply_templates,
            reply_text=reply_text if reply_text is not None else (t.reply or ""),
            due=due_class(t, dt.datetime.now(CHINA_TZ).date()),
            ratings=RATINGS,
            open_statuses=OPEN_STATUSES,
            promoted=_promoted(faq_store, t.no),
        )
        ctx["error"] = error
        return render(request, "ticket.html", ctx, status_code=status_code)

    @route("GET", "/tickets/{no}", READERS)
    def ticket(staff: Reader, request: Request, no: str) -> Response:
        return ticket_page(request, staff, no)

    def act(
        request: Request,
        staff: Staff,
        no: str,
        action: str,
        run: Any,
        *,
        reply_text: str | None = None,
        target_after: str | None = None,
    ) -> Response:
        """Run one ticket action: redirect with a notice, or show the page again with the error."""
        t = handleable(staff, no)
        try:
            detail = run(t) or {}
        except Conflict as exc:
            return ticket_page(
                request,
                staff,
                t.no,
                error=exc.user_message + "（您填写的内容已保留）",
                status_code=409,
                reply_text=reply_text,
            )
        except (InvalidInput, NotFound) as exc:
            return ticket_page(
                request, staff, t.no, error=exc.user_message, status_code=400, reply_text=reply_text
            )
        record(staff, action, t.no, **detail)
        return RedirectResponse(target_after or f"/console/tickets/{t.no}?done={action}", status_code=303)

    Version = Annotated[int, Form(ge=1, le=MAX_ID)]

    @route("POST", "/tickets/{no}/assign", HANDLERS)
    def assign(staff: Handler, request: Request, no: str, version: Version) -> Response:
        return act(
            request,
            staff,
            no,
            "assign",
            lambda t: tickets.assign(t.no, staff=staff.user.username, expected_version=version) and None,
        )

    @route("POST", "/tickets/{no}/reply", HANDLERS)
    def reply(
        staff: Handler,
        request: Request,
        no: str,
        version: Version,
        text: Annotated[str, Form(max_length=6000)] = "",
    ) -> Response:
        def run(t: TicketView) -> dict[str, Any]:
            done = tickets.reply(t.no, staff=staff.user.username, text=text, expected_version=version)
            return {"channel": done.channel, "length": len(text.strip())}

        return act(request, staff, no, "reply", run, reply_text=text)

    @route("POST", "/tickets/{no}/note", HANDLERS)
    def note(
        staff: Handler, request: Request, no: str, text: Annotated[str, Form(max_length=3000)] = ""
    ) -> Response:
        return act(
            request,
            staff,
            no,
            "note",
            lambda t: tickets.add_note(t.no, by=staff.user.username, text=text) and None,
        )

    @route("POST", "/tickets/{no}/transfer", HANDLERS)
    def transfer(
        staff: Handler,
        request: Request,
        no: str,
        version: Version,
        department: Annotated[str, Form(max_length=200)] = "",
        reason: Annotated[str, Form(max_length=3000)] = "",
    ) -> Response:
        def run(t: TicketView) -> dict[str, Any]:
            tickets.transfer(
                t.no,
                to_department=department,
                reason=reason,
                by=staff.user.username,
                expected_version=version,
            )
            return {"from": t.department, "to": department.strip(), "reason": reason}

        target = None if staff.user.may_read_ticket(department.strip()) else "/console/queue?done=transfer"
        return act(request, staff, no, "transfer", run, target_after=target)

    @route("POST", "/tickets/{no}/close", HANDLERS)
    def close(
        staff: Handler,
        request: Request,
        no: str,
        version: Version,
        reason: Annotated[str, Form(max_length=3000)] = "",
    ) -> Response:
        return act(
            request,
            staff,
            no,
            "close",
            lambda t: (
                tickets.close(t.no, by=staff.user.username, reason=reason or None, expected_version=version)
                and None
            ),
        )

    @route("POST", "/tickets/{no}/reopen", HANDLERS)
    def reopen(
        staff: Handler,
        request: Request,
        no: str,
        version: Version,
        reason: Annotated[str, Form(max_length=3000)] = "",
    ) -> Response:
        return act(
            request,
            staff,
            no,
            "reopen",
            lambda t: (
                tickets.reopen(t.no, by=staff.user.username, reason=reason, expected_version=version) and None
            ),
        )

    @route("POST", "/tickets/{no}/publish", HANDLERS)
    def publish(
        staff: Handler,
        request: Request,
        no: str,
        version: Version,
        question: Annotated[str, Form(max_length=3000)] = "",
        answer: Annotated[str, Form(max_length=6000)] = "",
    ) -> Response:
        def run(t: TicketView) -> dict[str, Any]:
            tickets.publish(
                t.no, by=staff.user.username, question=question, reply=answer, expected_version=version
            )
            return {
                "question_edited": question.strip() != t.question,
                "reply_edited": answer.strip() != (t.reply or ""),
            }

        return act(request, staff, no, "publish", run)

    @route("POST", "/tickets/{no}/unpublish", HANDLERS)
    def unpublish(staff: Handler, request: Request, no: str, version: Version) -> Response:
        return act(
            request,
            staff,
            no,
            "unpublish",
            lambda t: (
                tickets.publish(t.no, by=staff.user.username, published=False, expected_version=version)
                and None
            ),
        )

    @route("POST", "/tickets/{no}/promote", HANDLERS)
    def promote(staff: Handler, request: Request, no: str) -> Response:
        t = handleable(staff, no)
        existing = _promoted(faq_store, t.no)
        if existing is not None:
            return RedirectResponse(f"/console/faqs/{existing.id}", status_code=303)
        if not t.reply:
            return ticket_page(request, staff, t.no, error="留言尚未答复，不能转为问答", status_code=400)
        try:
            rec = faq_store.add(by=staff.user.username, status="draft", **faq_draft_fields(t))
        except PolicybotError as exc:
            return ticket_page(request, staff, t.no, error=exc.user_message, status_code=400)
        tickets.add_note(t.no, by=staff.user.username, text=f"已转为常见问答草稿 {rec.id}")
        record(staff, "faq_draft", rec.id, ticket=t.no, question=rec.question)
        return RedirectResponse(f"/console/faqs/{rec.id}?done=draft", status_code=303)

    @route("GET", "/faq-search", HANDLERS)
    def faq_search(staff: Handler, q: FaqSearch = "") -> Response:
        return JSONResponse({"items": _search_faqs(kb, faq_store, q)})

    # --- FAQ drafts --------------------------------------------------------------------------------

    def editable_faq(staff: Staff, faq_id: str) -> FaqRecord:
        """An FAQ this user may edit: any of their units', or only drafts for drafting-unit readers."""
        rec = faq_store.get(faq_id)
        if rec is None or not (
            staff.user.may_edit_faq(rec.unit)
            or (rec.status == "draft" and staff.user.may_draft_faq(rec.unit))
        ):
            raise NotFound("未找到该问答", f"FAQ {faq_id} hidden from {staff.user.username}")
        return rec

    @route("GET", "/faqs", FAQ_DRAFTERS)
    def faq_list(staff: FaqDrafter, request: Request) -> Response:
        drafts = faq_store.list(status="draft", limit=500, order="recent")
        drafts = [r for r in drafts if staff.user.may_draft_faq(r.unit)]
        promoted = [
            r
            for r in faq_store.list(tag=PROMOTED_TAG, limit=200, order="recent")
            if r.status == "published" and staff.user.may_edit_faq(r.unit)
        ]
        return render(
            request,
            "faqs.html",
            base(request, staff, title="问答审核", drafts=drafts, promoted=promoted[:50]),
        )

    @route("GET", "/faqs/{faq_id}", FAQ_DRAFTERS)
    def faq_page(staff: FaqDrafter, request: Request, faq_id: str) -> Response:
        rec = editable_faq(staff, faq_id)
        return render(
            request,
            "faq.html",
            base(
                request, staff, title=f"问答 {rec.id}", f=rec, form=_faq_form(rec), units=known_departments()
            ),
        )

    def save_faq(
        request: Request, staff: Staff, faq_id: str, form: dict[str, str], *, publish: bool
    ) -> Response:
        rec = editable_faq(staff, faq_id)
        fields = _faq_fields(form)
        try:
            if not staff.user.may_draft_faq(fields["unit"]):
                raise InvalidInput("只能选择您所在部门作为制文单位", "unit outside the user's departments")
            expected = int(form.get("seq") or 0) or None
            updated = faq_store.edit(rec.id, by=staff.user.username, expected_seq=expected, **fields)
            if updated.seq != rec.seq:
                record(staff, "faq_edit", rec.id, fields=sorted(fields))
            if publish:
                updated = faq_store.publish(rec.id, by=staff.user.username, expected_seq=updated.seq)
                kb.refresh(force=True)
                record(staff, "faq_publish", rec.id, question=updated.question)
        except (PolicybotError, ValueError) as exc:
            message = exc.user_message if isinstance(exc, PolicybotError) else "表单内容不正确"
            if isinstance(exc, Conflict):
                message = "该问答已被他人修改，请刷新后再编辑（您填写的内容已保留）"
            ctx = base(request, staff, title=f"问答 {rec.id}", f=rec, form=form, units=known_departments())
            ctx["error"] = message
            return render(request, "faq.html", ctx, status_code=409 if isinstance(exc, Conflict) else 400)
        done = "faq_published" if publish else "saved"
        return RedirectResponse(f"/console/faqs/{rec.id}?done={done}", status_code=303)

    FaqText = Annotated[str, Form(max_length=25_000)]
    FaqLine = Annotated[str, Form(max_length=600)]

    @route("POST", "/faqs/{faq_id}", FAQ_DRAFTERS)
    def faq_save(
        staff: FaqDrafter,
        request: Request,
        faq_id: str,
        question: FaqLine = "",
        similar: FaqText = "",
        answer: FaqText = "",
        tags: FaqLine = "",
        unit: FaqLine = "",
        source_policy: FaqLine = "",
        source_article: FaqLine = "",
        seq: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        form = dict(
            question=question,
            similar=similar,
            answer=answer,
            tags=tags,
            unit=unit,
            source_policy=source_policy,
            source_article=source_article,
            seq=seq,
        )
        return save_faq(request, staff, faq_id, form, publish=False)

    @route("POST", "/faqs/{faq_id}/publish", FAQ_EDITORS)
    def faq_publish(
        staff: FaqEditor,
        request: Request,
        faq_id: str,
        question: FaqLine = "",
        similar: FaqText = "",
        answer: FaqText = "",
        tags: FaqLine = "",
        unit: FaqLine = "",
        source_policy: FaqLine = "",
        source_article: FaqLine = "",
        seq: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        form = dict(
            question=question,
            similar=similar,
            answer=answer,
            tags=tags,
            unit=unit,
            source_policy=source_policy,
            source_article=source_article,
            seq=seq,
        )
        return save_faq(request, staff, faq_id, form, publish=True)

    # --- reports -----------------------------------------------------------------------------------

    @route("GET", "/reports", REPORTERS)
    def reports(staff: Reporter, request: Request) -> Response:
        scope = visible_departments(staff.user)
        return render(
            request,
            "reports.html",
            base(request, staff, title="办理统计", rows=_report_rows(sessions, scope, tickets)),
        )

    # --- weekly unanswered-questions reports ---------------------------------------------------------

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

    WeekQ = Annotated[str, Query(max_length=10)]
    UnitQ = Annotated[str, Query(max_length=200)]

    @route("GET", "/weekly", WEEKLY)
    def weekly_list(staff: WeeklyReader, request: Request, week: WeekQ = "") -> Response:
        label = parse_week(week).label if week else previous_week()
        analysis = weekly_reports.analysis(label)
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
                schedule=report_schedule,
                overview_name=OVERVIEW,
            ),
        )

    @route("GET", "/weekly/{week}", WEEKLY)
    def weekly_view(staff: WeeklyReader, request: Request, week: str, unit: UnitQ = "") -> Response:
        label, name = report_scope(staff, week, unit)
        analysis = weekly_reports.analysis(label)
        report = analysis.report(name)
        drafted: dict[str, str] = {}
        for rec in faq_store.list(tag=week_tag(label), limit=500):
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

    @route("GET", "/weekly/{week}/chart.png", WEEKLY)
    def weekly_chart(staff: WeeklyReader, week: str, unit: UnitQ = "") -> Response:
        label, name = report_scope(staff, week, unit)
        return Response(
            weekly_reports.chart(label, name),
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=300"},
        )

    @route("GET", "/weekly/{week}/download", WEEKLY)
    def weekly_download(
        staff: WeeklyReader, week: str, unit: UnitQ = "", format: Annotated[str, Query(max_length=4)] = "html"
    ) -> Response:
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

    @route("POST", "/weekly/{week}/draft", WEEKLY)
    def weekly_draft(
        staff: WeeklyReader,
        week: str,
        topic: Annotated[str, Form(max_length=10)] = "",
        question: Annotated[str, Form(max_length=3000)] = "",
    ) -> Response:
        label = parse_week(week).label
        analysis = weekly_reports.analysis(label)
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
        record(
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

    # --- dashboard ----------------------------------------------------------------------------------

    DayQ = Annotated[str, Query(max_length=10)]

    @route("GET", "/dashboard", DASHBOARD)
    def dashboard(staff: Analyst, request: Request, start: DayQ = "", end: DayQ = "") -> Response:
        first, last = parse_range(start, end)
        d = build_dashboard(sessions, work_calendar, first, last)
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
                ["新增留言"],
                [(o,) for _, o, _ in d.ticket_daily],
                title="每日新增留言",
                colors=(charts.PALETTE[1],),
                width=560,
                height=190,
            ),
        )
        return render(request, "dashboard.html", ctx)

    @route("GET", "/dashboard.csv", DASHBOARD)
    def dashboard_export(staff: Analyst, start: DayQ = "", end: DayQ = "") -> Response:
        first, last = parse_range(start, end)
        d = build_dashboard(sessions, work_calendar, first, last)
        name = f"dashboard-{first:%Y%m%d}-{last:%Y%m%d}.csv"
        return StreamingResponse(
            dashboard_csv(d),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- admin: users, departments, templates, audit ---------------------------------------------------

    @route("GET", "/admin/users", ("admin",))
    def users_page(staff: Admin, request: Request) -> Response:
        return render(
            request,
            "users.html",
            base(
                request,
                staff,
                title="用户管理",
                users=accts.users(),
                roles=ROLES,
                departments=known_departments(),
            ),
        )

    def users_error(request: Request, staff: Staff, message: str) -> Response:
        ctx = base(
            request,
            staff,
            title="用户管理",
            users=accts.users(),
            roles=ROLES,
            departments=known_departments(),
        )
        ctx["error"] = message
        return render(request, "users.html", ctx, status_code=400)

    @route("POST", "/admin/users", ("admin",))
    def user_add(
        staff: Admin,
        request: Request,
        username: Annotated[str, Form(max_length=60)] = "",
        display_name: Annotated[str, Form(max_length=60)] = "",
        role: Annotated[str, Form(max_length=20)] = "",
        departments: Annotated[str, Form(max_length=3000)] = "",
        password: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        try:
            user = accts.add_user(
                username,
                password,
                role=role,
                departments=_split_lines(departments),
                display_name=display_name,
                by=staff.user.username,
            )
        except PolicybotError as exc:
            return users_error(request, staff, exc.user_message)
        record(staff, "user_add", user.username, role=user.role, departments=list(user.departments))
        return RedirectResponse("/console/admin/users?done=user", status_code=303)

    @route("POST", "/admin/users/{user_id}", ("admin",))
    def user_edit(
        staff: Admin,
        request: Request,
        user_id: RowId,
        display_name: Annotated[str, Form(max_length=60)] = "",
        role: Annotated[str, Form(max_length=20)] = "",
        departments: Annotated[str, Form(max_length=3000)] = "",
        active: Annotated[str, Form(max_length=5)] = "",
    ) -> Response:
        try:
            user = accts.update_user(
                user_id,
                role=role,
                departments=_split_lines(departments),
                display_name=display_name,
                active=active == "1",
            )
        except PolicybotError as exc:
            return users_error(request, staff, exc.user_message)
        record(
            staff,
            "user_edit",
            user.username,
            role=user.role,
            departments=list(user.departments),
            active=user.active,
        )
        return RedirectResponse("/console/admin/users?done=user", status_code=303)

    @route("POST", "/admin/users/{user_id}/password", ("admin",))
    def user_password(
        staff: Admin, request: Request, user_id: RowId, password: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        try:
            user = accts.set_password(accts.get_user(user_id).username, password)
        except PolicybotError as exc:
            return users_error(request, staff, exc.user_message)
        record(staff, "user_password", user.username)
        return RedirectResponse("/console/admin/users?done=password", status_code=303)

    @route("GET", "/admin/departments", ("admin",))
    def departments_page(staff: Admin, request: Request) -> Response:
        return render(
            request,
            "departments.html",
            base(
                request, staff, title="部门管理", departments=accts.departments(), known=known_departments()
            ),
        )

    @route("POST", "/admin/departments", ("admin",))
    def department_add(
        staff: Admin, request: Request, name: Annotated[str, Form(max_length=300)] = ""
    ) -> Response:
        try:
            dept = accts.add_department(name)
        except PolicybotError as exc:
            ctx = base(
                request, staff, title="部门管理", departments=accts.departments(), known=known_departments()
            )
            ctx["error"] = exc.user_message
            return render(request, "departments.html", ctx, status_code=400)
        record(staff, "department_add", dept.name)
        return RedirectResponse("/console/admin/departments?done=department", status_code=303)

    @route("POST", "/admin/departments/{dept_id}", ("admin",))
    def department_edit(
        staff: Admin, request: Request, dept_id: RowId, active: Annotated[str, Form(max_length=5)] = ""
    ) -> Response:
        dept = accts.set_department_active(dept_id, active == "1")
        record(staff, "department_edit", dept.name, active=dept.active)
        return RedirectResponse("/console/admin/departments?done=department", status_code=303)

    @route("GET", "/admin/templates", ("admin",))
    def templates_page(staff: Admin, request: Request) -> Response:
        with sessions() as s:
            rows = list(s.execute(select(ReplyTemplate).order_by(ReplyTemplate.title)).scalars())
        return render(
            request,
            "templates.html",
            base(request, staff, title="答复模板", rows=rows, departments=known_departments()),
        )

    def save_template(staff: Staff, tid: int | None, title: str, body: str, department: str) -> Response:
        title, body, department = _text(title, 100), _text(body, 5000), _text(department, 200)
        if not title or not body:
            raise InvalidInput("请填写模板名称和内容", "template title/body empty")
        with transaction(sessions) as s:
            row = ReplyTemplate() if tid is None else s.get(ReplyTemplate, tid)
            if row is None:
                raise NotFound("未找到该模板", f"template {tid} not found")
            row.title, row.body, row.department = title, body, department
            row.updated_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            row.updated_by = staff.user.username
            s.add(row)
        record(staff, "template_add" if tid is None else "template_edit", title)
        return RedirectResponse("/console/admin/templates?done=template", status_code=303)

    TplTitle = Annotated[str, Form(max_length=200)]
    TplBody = Annotated[str, Form(max_length=6000)]

    @route("POST", "/admin/templates", ("admin",))
    def template_add(
        staff: Admin, title: TplTitle = "", body: TplBody = "", department: TplTitle = ""
    ) -> Response:
        return save_template(staff, None, title, body, department)

    @route("POST", "/admin/templates/{tid}", ("admin",))
    def template_edit(
        staff: Admin, tid: RowId, title: TplTitle = "", body: TplBody = "", department: TplTitle = ""
    ) -> Response:
        return save_template(staff, tid, title, body, department)

    @route("POST", "/admin/templates/{tid}/delete", ("admin",))
    def template_delete(staff: Admin, tid: RowId) -> Response:
        with transaction(sessions) as s:
            row = s.get(ReplyTemplate, tid)
            if row is None:
                raise NotFound("未找到该模板", f"template {tid} not found")
            title = row.title
            s.delete(row)
        record(staff, "template_delete", title)
        return RedirectResponse("/console/admin/templates?done=template", status_code=303)

    AuditQ = Annotated[str, Query(max_length=100)]

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

    @route("GET", "/audit", ("admin",))
    def audit_page(
        staff: Admin,
        request: Request,
        actor: AuditQ = "",
        action: AuditQ = "",
        target: AuditQ = "",
        since: AuditQ = "",
        until: AuditQ = "",
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    ) -> Response:
        filters = audit_filters(actor, action, target, since, until)
        rows = log.list(**filters, limit=101, offset=(page - 1) * 100)
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
                query_base=_query_without_page(request),
                export_query=str(request.url.query),
            ),
        )

    @route("GET", "/audit.csv", ("admin",))
    def audit_csv(
        staff: Admin,
        actor: AuditQ = "",
        action: AuditQ = "",
        target: AuditQ = "",
        since: AuditQ = "",
        until: AuditQ = "",
    ) -> Response:
        filters = audit_filters(actor, action, target, since, until)
        stamp = dt.datetime.now(CHINA_TZ).strftime("%Y%m%d-%H%M")
        return StreamingResponse(
            log.export_csv(**filters),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
        )

    return router


# --- helpers -----------------------------------------------------------------------------------------

PROMOTED_TAG: Final = "政策留言转化"


def promoted_tag(no: str) -> str:
    return f"留言{no}"


def _promoted(faqs: FaqStore, no: str) -> FaqRecord | None:
    found = faqs.list(tag=promoted_tag(no), limit=1)
    return found[0] if found else None


def faq_draft_fields(t: TicketView) -> dict[str, Any]:
    """An FAQ draft from an answered ticket: its question, the reply as answer, the citizen's
    phrasings as similar questions, the department as drafting unit, the ticket number as a tag."""
    question = (t.publish_question or t.question).strip()
    answer = (t.publish_reply or t.reply or "").strip()
    similar: list[str] = []
    for q in [t.question, *(e.get("text", "") for e in t.transcript if e.get("role") == "user")]:
        line = q.strip()
        if line and line != question and len(line) <= 500 and line not in similar:
            similar.append(line)
    return {
        "question": question[:500],
        "answer": answer,
        "similar": similar[:50],
        "tags": [PROMOTED_TAG, promoted_tag(t.no)],
        "unit": t.department,
    }


def _split_lines(value: str) -> list[str]:
    return [p.strip() for p in value.replace("，", ",").replace("\n", ",").split(",") if p.strip()]


def _faq_form(rec: FaqRecord) -> dict[str, str]:
    return {
        "question": rec.question,
        "similar": "\n".join(rec.similar),
        "answer": rec.answer,
        "tags": "，".join(rec.tags),
        "unit": rec.unit or "",
        "source_policy": rec.source_policy or "",
        "source_article": rec.source_article or "",
        "seq": str(rec.seq),
    }


def _faq_fields(form: dict[str, str]) -> dict[str, Any]:
    return {
        "question": form["question"].strip(),
        "similar": [s.strip() for s in form["similar"].splitlines() if s.strip()],
        "answer": form["answer"].strip(),
        "tags": _split_lines(form["tags"]),
        "unit": form["unit"].strip() or None,
        "source_policy": form["source_policy"].strip() or None,
        "source_article": form["source_article"].strip() or None,
    }


def _query_without_page(request: Request) -> str:
    return "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k not in ("page", "done"))


def _candidates(kb: KnowledgeBase, t: TicketView) -> list[dict[str, Any]]:
    """The FAQs/policies matched when the ticket was opened plus a live search, best first."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        live = kb.ask(t.question, k=5).hits
    except Exception:  # the ticket page must open even if the index is being rebuilt
        live = ()
    for h in live:
        seen.add(h.faq_id)
        out.append({"id": h.faq_id, "title": h.question, "score": h.score, "kind": "faq", "live": True})
    for m in t.matched:
        key, title = str(m.get("id", "")), str(m.get("title", "") or m.get("doc_no", ""))
        if (key and key in seen) or not (key or title):
            continue
        out.append(
            {
                "id": key,
                "title": title,
                "score": float(m.get("score", 0.0)),
                "kind": str(m.get("kind", "")),
                "live": False,
            }
        )
    out.sort(key=lambda c: -float(c["score"]))
    return out[:8]


def _search_faqs(kb: KnowledgeBase, faqs: FaqStore, q: str) -> list[dict[str, Any]]:
    text = q.strip()
    if not text:
        return []
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for h in kb.ask(text, k=5).hits:
        rec = kb.record(h.faq_id)
        if rec is not None:
            seen.add(rec.id)
            items.append(
                {"id": rec.id, "question": rec.question, "answer": rec.answer, "score": round(h.score, 3)}
            )
    for rec in faqs.list(status="published", text=text, limit=8):
        if rec.id not in seen and len(items) < 8:
            seen.add(rec.id)
            items.append({"id": rec.id, "question": rec.question, "answer": rec.answer, "score": None})
    return items


def _delivery(events: list[EventView]) -> dict[str, Any] | None:
    """The push state of the latest reply: the last delivery event after it."""
    last_reply = max((e.id for e in events if e.action == "reply"), default=None)
    if last_reply is None:
        return None
    deliveries = [e for e in events if e.action == "delivery" and e.id > last_reply]
    if not deliveries:
        return {"state": "pending", "text": "待推送"}
    d = deliveries[-1]
    if d.detail.get("ok"):
        return {
            "state": "ok",
            "text": f"已推送（{d.detail.get('channel', '')}，第{d.detail.get('attempt', 1)}次）",
        }
    return {
        "state": "failed",
        "text": f"推送失败（第{d.detail.get('attempt', 1)}次）：{d.detail.get('error', '')}",
    }


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
            by_status = dict(zip(STATUSES, rest[:4], strict=True))
            overdue, flagged = rest[4], rest[5]
            ratings = dict(zip(RATINGS, rest[6:9], strict=True))
            rated = sum(ratings.values())
            rows.append(
                {
                    "department": r[0],
                    "total": total,
                    "status": by_status,
                    "overdue": overdue,
                    "flagged": flagged,
                    "ratings": ratings,
                    "published": rest[9],
                    "satisfaction": f"{(ratings['满意'] + ratings['基本满意']) * 100 / rated:.0f}%"
                    if rated
                    else "—",
                    "limit": tickets.limit_for(r[0]),
                }
            )
    return rows


__all__ = ["PROMOTED_TAG", "build_console_router", "faq_draft_fields", "promoted_tag"]
