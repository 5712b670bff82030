"""Console routes of signing in and out: the static assets (public), the login form with its
anonymous CSRF token and the login (failures and lockouts audited with the client IP), logout, the
home page that sends each role to its start page, and changing one's own password.
"""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.auth import LockedOut, LoginFailed
from handoff.console.deps import PREFIX, AnyUser, ConsoleDep, base, safe_next
from handoff.console.web import HERE, STATIC_FILES, ConsoleRoute, client_ip, render
from knowledge.errors import InvalidInput, PolicybotError

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/static/{name}")
def static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        raise HTTPException(404, "未找到该文件")
    return Response(
        (HERE / "static" / name).read_bytes(),
        media_type=media,
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/login")
def login_page(
    console: ConsoleDep, request: Request, next: Annotated[str, Query(max_length=500)] = ""
) -> Response:
    return render(
        request,
        "login.html",
        base(
            request,
            None,
            title="工作人员登录",
            form_token=console.pre.form_token(request),
            next=safe_next(next),
            username="",
        ),
    )


@router.post("/login")
def login(
    console: ConsoleDep,
    request: Request,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    config, log = console.config, console.audit
    console.pre.check(request, token)
    ip = client_ip(request, config.trusted_proxies)
    name = username.strip().lower()[:50]
    try:
        user, cookie, _csrf = console.accounts.login(name, password, ip=ip)
    except (LoginFailed, LockedOut) as exc:
        action = "login_locked" if isinstance(exc, LockedOut) else "login_failed"
        log.record(action, actor=name or "-", ip=ip, target=name)
        ctx = base(
            request,
            None,
            title="工作人员登录",
            form_token=console.pre.form_token(request),
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


@router.post("/logout")
def logout(staff: AnyUser, console: ConsoleDep, request: Request) -> Response:
    config = console.config
    console.accounts.logout(request.cookies.get(config.session_cookie))
    console.record(staff, "logout", staff.user.username)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(
        config.session_cookie, path="/", secure=config.cookie_secure, httponly=True, samesite="strict"
    )
    return response


@router.get("/")
def home(staff: AnyUser) -> Response:
    target = "/console/admin/users" if staff.user.role == "admin" else "/console/queue"
    if staff.user.role == "supervisor":
        target = "/console/queue?flagged=1"
    return RedirectResponse(target, status_code=303)


@router.get("/account")
def account_page(staff: AnyUser, request: Request) -> Response:
    return render(request, "account.html", base(request, staff, title="修改密码"))


@router.post("/account")
def account_change(
    staff: AnyUser,
    console: ConsoleDep,
    request: Request,
    current: Annotated[str, Form(max_length=200)] = "",
    new: Annotated[str, Form(max_length=200)] = "",
    repeat: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    config, accts = console.config, console.accounts
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
    console.record(staff, "password", staff.user.username)
    response = RedirectResponse("/console/login?done=password", status_code=303)
    response.delete_cookie(
        config.session_cookie, path="/", secure=config.cookie_secure, httponly=True, samesite="strict"
    )
    return response
