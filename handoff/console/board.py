"""The public message board (/board, no login): the answered tickets staff published (their edited,
masked texts, never the citizen's name or phone, not even masked: the consent covers handling the
message only; `public_entry` is the one place that decides what of a ticket is public), and a
per-ticket page where a citizen enters the
verification code to see the status and reply of their own ticket and rate the reply once
(满意 / 基本满意 / 不满意; 不满意 re-opens it for a supervisor). Wrong codes are throttled per IP
and per ticket number; forms carry a signed double-submit CSRF token and an Origin check.
"""

from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.audit import AuditLog
from handoff.console.auth import Accounts
from handoff.console.config import ConsoleConfig
from handoff.console.web import ConsoleRoute, PreCsrf, client_ip, render
from handoff.tickets import MAX_PAGE, RATINGS, REPLIED, TicketService, TicketView
from knowledge.errors import InvalidInput, NotFound
from knowledge.sensitive import SensitiveWords

PAGE_SIZE: Final = 20
TOO_MANY: Final = "查询码错误次数过多，请15分钟后再试"


def _same(text: str) -> str:
    return text


def public_entry(t: TicketView, words: Callable[[str], str] = _same) -> dict[str, Any]:
    """What the board shows of a published ticket: its number, department, status and rating, the
    published (masked) texts and dates, sensitive words masked by `words`. No contact field, not
    even masked."""
    return {
        "no": t.no,
        "department": t.department,
        "status": t.status,
        "rating": t.rating,
        "question": words(t.publish_question or ""),
        "reply": words(t.publish_reply or ""),
        "created_at": t.created_at,
        "published_at": t.published_at,
        "replied_at": t.replied_at,
    }


def own_entry(t: TicketView, words: Callable[[str], str] = _same) -> dict[str, Any]:
    """What the citizen who entered the ticket's code sees of it: the public fields plus the due
    date and their own (masked) question and the reply. Still no contact field."""
    return public_entry(t, words) | {
        "due_date": t.due_date,
        "question": words(t.question),
        "reply": words(t.reply or "") or None,
    }


def build_board_router(
    *,
    sessions: sessionmaker[Session],
    tickets: TicketService,
    config: ConsoleConfig,
    accounts: Accounts | None = None,
    audit: AuditLog | None = None,
    sensitive: SensitiveWords | None = None,
) -> APIRouter:
    words = (sensitive or SensitiveWords(sessions)).mask  # the board masks sensitive words
    accts = accounts or Accounts(sessions, config)
    log = audit or AuditLog(sessions)
    pre = PreCsrf(config)
    router = APIRouter(prefix="/board", route_class=ConsoleRoute, include_in_schema=False)

    def ctx(request: Request, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "user": None,
            "csrf": "",
            "notice": "",
            "error": "",
            "form_token": pre.form_token(request),
            "ratings": RATINGS,
        }
        base.update(extra)
        return base

    def published(no: str) -> dict[str, Any] | None:
        try:
            t = tickets.get(no)
        except NotFound:
            return None
        return public_entry(t, words) if t.published else None

    @router.get("")
    def board(
        request: Request,
        page: Annotated[int, Query(ge=1, le=1000)] = 1,
        no: Annotated[str, Query(max_length=40, pattern=r"^[A-Za-z0-9-]*$")] = "",
    ) -> Response:
        if no.strip():
            return RedirectResponse(f"/board/{no.strip().upper()}", status_code=303)
        rows = tickets.list(published=True, limit=MAX_PAGE)
        rows.sort(key=lambda t: (t.published_at is not None, t.published_at), reverse=True)
        start = (page - 1) * PAGE_SIZE
        entries = [public_entry(t, words) for t in rows[start : start + PAGE_SIZE]]
        return render(
            request,
            "board.html",
            ctx(
                request,
                title="政策留言公开答复",
                entries=entries,
                page=page,
                more=len(rows) > start + PAGE_SIZE,
            ),
        )

    @router.get("/{no}")
    def board_ticket(request: Request, no: str) -> Response:
        return render(
            request,
            "board_ticket.html",
            ctx(
                request,
                title=f"留言 {no.strip().upper()[:40]}",
                no=no.strip().upper()[:40],
                public=published(no),
                mine=None,
                code="",
            ),
        )

    def own(request: Request, no: str, code: str) -> TicketView:
        ip = client_ip(request, config.trusted_proxies)
        keys = [f"board-ip:{ip}", f"board-no:{no.strip().upper()[:40]}"]
        if not accts.reserve(keys):  # counted before the check: a parallel burst gets the limit, no more
            raise InvalidInput(TOO_MANY, f"board lookup throttled for {ip}")
        try:
            found = tickets.lookup(no, code)
        except NotFound:
            if accts.fail(keys):
                raise InvalidInput(TOO_MANY, f"board lookup locked for {ip}") from None
            raise
        except BaseException:
            accts.give_back(keys)  # not a wrong code
            raise
        if not accts.release(keys):  # locked by the rest of a burst meanwhile
            raise InvalidInput(TOO_MANY, f"board lookup locked in flight for {ip}")
        return found

    def show(
        request: Request, no: str, code: str, *, notice: str = "", error: str = "", status_code: int = 200
    ) -> Response:
        key = no.strip().upper()[:40]
        try:
            t = own(request, key, code)
        except (NotFound, InvalidInput) as exc:
            page = ctx(request, title=f"留言 {key}", no=key, public=published(key), mine=None, code="")
            page["error"] = exc.user_message
            return render(
                request, "board_ticket.html", page, status_code=404 if isinstance(exc, NotFound) else 429
            )
        page = ctx(
            request,
            title=f"留言 {t.no}",
            no=t.no,
            public=published(t.no),
            mine=own_entry(t, words),
            code=code.strip(),
            can_rate=t.rating is None
            and t.reply is not None
            and (t.status == REPLIED or t.closed_at is not None),
        )
        page["notice"] = notice
        page["error"] = error
        return render(request, "board_ticket.html", page, status_code=status_code)

    Code = Annotated[str, Form(max_length=20)]
    Token = Annotated[str, Form(max_length=200)]

    @router.post("/{no}")
    def lookup(request: Request, no: str, code: Code = "", token: Token = "") -> Response:
        pre.check(request, token)
        return show(request, no, code)

    @router.post("/{no}/rate")
    def rate(
        request: Request,
        no: str,
        code: Code = "",
        rating: Annotated[str, Form(max_length=10)] = "",
        token: Token = "",
    ) -> Response:
        pre.check(request, token)
        own(request, no, code)  # throttled like a lookup
        try:
            t = tickets.rate(no, rating=rating, verify_code=code)
        except InvalidInput as exc:
            return show(request, no, code, error=exc.user_message, status_code=400)
        log.record(
            "board_rate",
            actor="citizen",
            ip=client_ip(request, config.trusted_proxies),
            target=t.no,
            detail={"rating": rating, "status": t.status},
        )
        thanks = "感谢您的评价" + ("，我们将重新办理您的留言" if rating == "不满意" else "")
        return show(request, no, code, notice=thanks)

    return router


__all__ = ["build_board_router", "own_entry", "public_entry"]
