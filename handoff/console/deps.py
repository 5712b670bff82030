"""The shared dependencies of the console routes (handoff/console/routes/): the `Console` context
that `build_console_router` binds to each request (sessions, TicketService, KnowledgeBase, FAQ
store, work calendar, accounts, audit log, weekly reports, the login form's CSRF), the signed-in
`Staff` behind a role guard as `Annotated` types (`Handler`, `Admin`, ...: the guard also checks
the Origin and the session's CSRF token on every POST), the role tuples, and the helpers every
page uses (the base template context with its notices, the audit record, department lists).
"""

import datetime as dt
import hmac
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.audit import AuditLog
from handoff.console.auth import ROLE_LABELS, ROLES, Accounts, User
from handoff.console.config import ConsoleConfig
from handoff.console.web import PreCsrf, Redirect, client_ip, origin_ok
from handoff.models import Ticket
from handoff.sla import WorkCalendar
from handoff.tickets import (
    CLOSED,
    IN_PROGRESS,
    PENDING,
    REPLIED,
    STATUSES,
    SUPPLEMENT,
    TicketService,
    TicketView,
)
from handoff.tickets.promotion import PROMOTED_TAG as PROMOTED
from handoff.tickets.records import MERGED
from handoff.weekly import WeeklyReports
from knowledge.answer import KnowledgeBase
from knowledge.faqs import FaqStore
from knowledge.models import Faq
from knowledge.smalltalk import SmallTalkStore

PREFIX: Final = "/console"  # every route module's router carries it
ALL: Final = ROLES
HANDLERS: Final = ("staff", "supervisor")
READERS: Final = ("staff", "supervisor", "reader", "admin")  # admins read every queue, read-only
FAQ_EDITORS: Final = ("admin", "staff", "supervisor")
REPORTERS: Final = ("supervisor", "reader")
FAQ_DRAFTERS: Final = ALL  # readers may edit drafts of their unit; publishing stays with FAQ_EDITORS
WEEKLY: Final = ALL  # admins and supervisors see every unit, staff and readers their own
DASHBOARD: Final = ("admin", "supervisor")
KB_CURATORS: Final = ("admin", "supervisor")  # store-wide changes (synonym sets) and whole-store exports

DONE: Final = {
    "review": "已标记复核完成",
    "suggestions_approved": "已采纳所选建议问法，机器人即刻使用",
    "suggestions_refused": "部分建议问法会与已有问法冲突，未采纳（冲突见列表）",
    "suggestions_rejected": "已拒绝所选建议问法",
    "welcome_saved": "欢迎语推荐问题已保存",
    "assign": "已受理，您现在是该留言的办理人",
    "reply": "答复已保存，正通过原渠道推送给留言人",
    "note": "内部备注已添加",
    "close": "留言已办结",
    "reopen": "留言已重新办理",
    "publish": "已在公开留言板发布",
    "unpublish": "已从公开留言板撤下",
    "transfer": "留言已转办",
    "interim": "阶段性答复已保存，正通过原渠道推送给留言人（留言仍在办理中）",
    "merge": "留言已合并，留言人将收到所保留留言的答复",
    "draft": "已生成问答草稿，请审核后发布",
    "saved": "已保存",
    "smalltalk": "寒暄语已保存，几秒内在所有渠道生效",
    "faq_published": "问答已发布，机器人已即时使用新答案",
    "user": "用户已保存",
    "password": "密码已修改",
    "department": "部门已保存",
    "template": "答复模板已保存",
    "faq_retired": "问答已下线，机器人不再使用该答案",
    "faq_restored": "已恢复到所选版本（作为新版本保存）",
    "imported": "导入完成，机器人已即时使用新内容",
    "synonyms": "同义词组已保存",
    "synonyms_deleted": "同义词组已删除",
    "time_limits": "办理时限已保存，此后提交或更改类型的留言按新时限计算",
    "category": "留言类型已更改，办理期限已按新类型的时限重新计算",
    "extension_request": "延期申请已提交，待督办审批",
    "extension_approve": "已批准延期，新的办理期限已通知留言人",
    "extension_refuse": "已不批准延期，办理期限不变",
    "supplement_request": "补正通知已发送给留言人，办理时限暂停计算",
    "supplement_resume": "已恢复计时，办理期限已顺延",
}
STATUS_CLASS: Final = {
    PENDING: "pending",
    IN_PROGRESS: "progress",
    SUPPLEMENT: "paused",
    REPLIED: "replied",
    CLOSED: "closed",
    MERGED: "closed",
}
PROMOTED_TAG: Final = PROMOTED  # handoff.tickets.promotion


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of one request."""

    user: User
    csrf: str
    ip: str


@dataclass(frozen=True)
class Console:
    """The services of one console router; `build_console_router` binds it to every request."""

    sessions: sessionmaker[Session]
    tickets: TicketService
    kb: KnowledgeBase
    config: ConsoleConfig
    faqs: FaqStore
    calendar: WorkCalendar
    accounts: Accounts
    audit: AuditLog
    weekly: WeeklyReports
    pre: PreCsrf
    report_runs: Callable[[], Sequence[Any]] | None = None
    report_schedule: str = ""
    smalltalk: SmallTalkStore | None = None  # small talk as administrators edit it (寒暄语)
    route_roles: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # for tests and docs

    def bind(self) -> Callable[[Request], Coroutine[Any, Any, None]]:
        """A router dependency that makes this context the request's `ConsoleDep`."""

        async def dependency(request: Request) -> None:
            request.state.console = self

        return dependency

    def record(self, staff: Staff, action: str, target: str = "", **detail: Any) -> None:
        self.audit.record(
            action, actor=staff.user.username, role=staff.user.role, ip=staff.ip, target=target, detail=detail
        )

    def known_departments(self) -> list[str]:
        names = {d.name for d in self.accounts.departments(active_only=True)}
        with self.sessions() as s:
            names |= {str(d) for d in s.execute(select(Ticket.department).distinct()).scalars() if d}
            names |= {str(u) for u in s.execute(select(Faq.unit).distinct()).scalars() if u}
        return sorted(names)

    def due_class(self, t: TicketView, today: dt.date) -> str:
        if t.overdue:
            return "overdue"
        if t.is_open and self.calendar.working_days_between(today, t.due_date) <= 1:
            return "due-soon"
        return ""


async def get_console(request: Request) -> Console:
    console: Console = request.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


def safe_next(value: str | None) -> str:
    """Only local console paths are followed after login (no open redirect)."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


class RoleGuard:
    """The FastAPI dependency that admits only the given roles (their set is `roles`); `files`:
    the route accepts uploaded files (every other POST refuses them)."""

    def __init__(self, *roles: str, files: bool = False) -> None:
        self.roles = frozenset(roles)
        self.files = files

    async def __call__(self, request: Request, console: ConsoleDep) -> Staff:
        allowed, accounts, config = self.roles, console.accounts, console.config
        signed = accounts.session(request.cookies.get(config.session_cookie))
        if signed is None:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise Redirect("/console/login?next=" + quote(safe_next(target), safe="/"))
            raise HTTPException(403, "登录已过期，请重新登录")
        request.state.console_user = signed.user
        if signed.user.role not in allowed:
            raise HTTPException(403, "您的账号无权访问此页面")
        if request.method not in ("GET", "HEAD"):
            if not origin_ok(request, config):
                raise HTTPException(403, "请求来源不正确，请从本站页面提交")
            form = await request.form()
            submitted = form.get("csrf")
            if not isinstance(submitted, str) or not hmac.compare_digest(submitted, signed.csrf):
                raise HTTPException(403, "页面已过期，请刷新后重新提交")
            if not self.files and any(not isinstance(v, str) for _, v in form.multi_items()):
                raise HTTPException(400, "不接受上传文件")
        return Staff(signed.user, signed.csrf, client_ip(request, config.trusted_proxies))


def guard(*roles: str, files: bool = False) -> RoleGuard:
    return RoleGuard(*roles, files=files)


AnyUser = Annotated[Staff, Depends(guard(*ALL))]
Reader = Annotated[Staff, Depends(guard(*READERS))]
Handler = Annotated[Staff, Depends(guard(*HANDLERS))]
FaqEditor = Annotated[Staff, Depends(guard(*FAQ_EDITORS))]
FaqDrafter = Annotated[Staff, Depends(guard(*FAQ_DRAFTERS))]
WeeklyReader = Annotated[Staff, Depends(guard(*WEEKLY))]
Analyst = Annotated[Staff, Depends(guard(*DASHBOARD))]
Reporter = Annotated[Staff, Depends(guard(*REPORTERS))]
Admin = Annotated[Staff, Depends(guard("admin"))]
KbCurator = Annotated[Staff, Depends(guard(*KB_CURATORS))]
FaqUploader = Annotated[Staff, Depends(guard(*FAQ_EDITORS, files=True))]


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
    console = getattr(request.state, "console", None)  # the live count's poll interval (live.js)
    ctx["live_poll_ms"] = int(console.config.live_poll_seconds * 1000) if console is not None else 20000
    ctx.update(extra)
    return ctx


def visible_departments(user: User) -> list[str] | None:
    return None if user.sees_all() else list(user.departments)


def query_without_page(request: Request) -> str:
    return "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k not in ("page", "done"))


def split_lines(value: str) -> list[str]:
    return [p.strip() for p in value.replace("，", ",").replace("\n", ",").split(",") if p.strip()]


__all__ = [
    "ALL",
    "DASHBOARD",
    "FAQ_DRAFTERS",
    "FAQ_EDITORS",
    "HANDLERS",
    "KB_CURATORS",
    "PREFIX",
    "PROMOTED_TAG",
    "READERS",
    "REPORTERS",
    "WEEKLY",
    "Admin",
    "Analyst",
    "AnyUser",
    "Console",
    "ConsoleDep",
    "FaqDrafter",
    "FaqEditor",
    "FaqUploader",
    "Handler",
    "KbCurator",
    "Reader",
    "Reporter",
    "RoleGuard",
    "Staff",
    "WeeklyReader",
    "base",
    "get_console",
    "guard",
    "query_without_page",
    "safe_next",
    "split_lines",
    "visible_departments",
]
