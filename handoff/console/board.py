"""The public message board (/board, no login): the answered tickets staff published (their edited,
masked texts, never the citizen's name or phone, not even masked: the consent covers handling the
message only; `public_entry` is the one place that decides what of a ticket is public), and a
per-ticket page where a citizen enters the
verification code to see the status and reply of their own ticket, rate the reply once
(满意 / 基本满意 / 不满意; 不满意 re-opens it for a supervisor) and answer a 补正 request. Wrong codes are throttled per IP
and per ticket number; forms carry a signed double-submit CSRF token and an Origin check. The routes are
module-level functions on `router` with the `Board` context (`BoardDep`) that `build_board_router`
binds to every request, the shape of the console's routes.
"""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.audit import AuditLog
from handoff.console.auth import Accounts
from handoff.console.config import ConsoleConfig
from handoff.console.web import ConsoleRoute, PreCsrf, client_ip, render
from handoff.tickets import CLOSED, MAX_PAGE, RATINGS, REPLIED, TicketService, TicketView
from knowledge.errors import InvalidInput, NotFound
from knowledge.sensitive import SensitiveWords

PAGE_SIZE: Final = 20
# Published tickets are shown only while answered: a reopened one (重新办理, 不满意) leaves the board
# until it is answered again; a merged one (已合并) never shows.
SHOWN: Final = (REPLIED, CLOSED)
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


@dataclass(frozen=True)
class Board:
    """The services of the board router; `build_board_router` binds it to every request."""

    tickets: TicketService
    config: ConsoleConfig
    accounts: Accounts
    audit: AuditLog
    pre: PreCsrf
    words: Callable[[str], str] = _same  # masks sensitive words (knowledge.sensitive)

    def bind(self) -> Callable[[Request], Coroutine[Any, Any, None]]:
        """A router dependency that makes this context the request's `BoardDep`."""

        async def dependency(request: Request) -> None:
            request.state.board = self

        return dependency

    def ctx(self, request: Request, **extra: Any) -> dict[str, Any]:
        """The base template context of every board page."""
        base: dict[str, Any] = {
            "user": None,
            "csrf": "",
            "notice": "",
            "error": "",
            "form_token": self.pre.form_token(request),
            "ratings": RATINGS,
        }
        base.update(extra)
        return base

    def published(self, no: str) -> dict[str, Any] | None:
        """The public entry of a published ticket, None for an unknown or unpublished number."""
        try:
            t = self.tickets.get(no)
        except NotFound:
            return None
        return public_entry(t, self.words) if t.published and t.status in SHOWN else None

    def own(self, request: Request, no: str, code: str) -> TicketView:
        """The ticket whose verification code was given, throttled per IP and per ticket number."""
        ip = client_ip(request, self.config.trusted_proxies)
        keys = [f"board-ip:{ip}", f"board-no:{no.strip().upper()[:40]}"]
        accts = self.accounts
        if not accts.reserve(keys):  # counted before the check: a parallel burst gets the limit, no more
            raise InvalidInput(TOO_MANY, f"board lookup throttled for {ip}")
        try:
            found = self.tickets.lookup(no, code)
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
        self,
        request: Request,
        no: str,
        code: str,
        *,
        notice: str = "",
        error: str = "",
        status_code: int = 200,
    ) -> Response:
        """The ticket page with the citizen's own view (or the error of a wrong code)."""
        key = no.strip().upper()[:40]
        try:
            t = self.own(request, key, code)
        except (NotFound, InvalidInput) as exc:
            page = self.ctx(
                request, title=f"留言 {key}", no=key, public=self.published(key), mine=None, code=""
            )
            page["error"] = exc.user_message
            return render(
                request, "board_ticket.html", page, status_code=404 if isinstance(exc, NotFound) else 429
            )
        page = self.ctx(
            request,
            title=f"留言 {t.no}",
            no=t.no,
            public=self.published(t.no),
            mine=own_entry(t, self.words),
            interims=[
                {"text": self.words(str(e.detail.get("text") or "")), "at": e.at}
                for e in self.tickets.events(t.no)
                if e.action == "interim"
            ],
            merged=self._merged(t),
            code=code.strip(),
            can_rate=t.rating is None
            and t.reply is not None
            and (t.status == REPLIED or t.closed_at is not None),
            supplement=next((x for x in self.tickets.supplements(t.no) if x.status == "waiting"), None),
        )
        page["notice"] = notice
        page["error"] = error
        return render(request, "board_ticket.html", page, status_code=status_code)

    def _merged(self, t: TicketView) -> dict[str, Any] | None:
        """For a ticket merged into another: the kept ticket's number and its answer, once answered."""
        if not t.merged_into:
            return None
        try:
            kept = self.tickets.get(t.merged_into)
        except NotFound:
            return None
        answered = kept.status in SHOWN and kept.reply
        return {"no": kept.no, "reply": self.words(kept.reply or "") if answered else None}


async def get_board(request: Request) -> Board:
    board: Board = request.state.board
    return board


BoardDep = Annotated[Board, Depends(get_board)]
Code = Annotated[str, Form(max_length=20)]
Token = Annotated[str, Form(max_length=200)]

router = APIRouter(prefix="/board", route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
def board_list(
    request: Request,
    board: BoardDep,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    no: Annotated[str, Query(max_length=40, pattern=r"^[A-Za-z0-9-]*$")] = "",
) -> Response:
    """The published tickets, newest publication first; a number in `no` jumps to its page."""
    if no.strip():
        return RedirectResponse(f"/board/{no.strip().upper()}", status_code=303)
    rows = board.tickets.list(published=True, status=SHOWN, limit=MAX_PAGE)
    rows.sort(key=lambda t: (t.published_at is not None, t.published_at), reverse=True)
    start = (page - 1) * PAGE_SIZE
    entries = [public_entry(t, board.words) for t in rows[start : start + PAGE_SIZE]]
    return render(
        request,
        "board.html",
        board.ctx(
            request,
            title="政策留言公开答复",
            entries=entries,
            page=page,
            more=len(rows) > start + PAGE_SIZE,
        ),
    )


# Routes with a fixed path (/board/<word>) go above this line: /board/{no} below takes any word.


@router.get("/{no}")
def board_ticket(request: Request, board: BoardDep, no: str) -> Response:
    """A ticket's public page with the verification-code form."""
    key = no.strip().upper()[:40]
    return render(
        request,
        "board_ticket.html",
        board.ctx(request, title=f"留言 {key}", no=key, public=board.published(no), mine=None, code=""),
    )


@router.post("/{no}")
def lookup(request: Request, board: BoardDep, no: str, code: Code = "", token: Token = "") -> Response:
    """The citizen's own view of their ticket, after the verification code."""
    board.pre.check(request, token)
    return board.show(request, no, code)


@router.post("/{no}/rate")
def rate(
    request: Request,
    board: BoardDep,
    no: str,
    code: Code = "",
    rating: Annotated[str, Form(max_length=10)] = "",
    token: Token = "",
) -> Response:
    """Rate the reply once (满意 / 基本满意 / 不满意; 不满意 re-opens the ticket)."""
    board.pre.check(request, token)
    board.own(request, no, code)  # throttled like a lookup
    try:
        t = board.tickets.rate(no, rating=rating, verify_code=code)
    except InvalidInput as exc:
        return board.show(request, no, code, error=exc.user_message, status_code=400)
    board.audit.record(
        "board_rate",
        actor="citizen",
        ip=client_ip(request, board.config.trusted_proxies),
        target=t.no,
        detail={"rating": rating, "status": t.status},
    )
    thanks = "感谢您的评价" + ("，我们将重新办理您的留言" if rating == "不满意" else "")
    return board.show(request, no, code, notice=thanks)


@router.post("/{no}/supplement")
def supplement(
    request: Request,
    board: BoardDep,
    no: str,
    code: Code = "",
    text: Annotated[str, Form(max_length=3000)] = "",
    token: Token = "",
) -> Response:
    """The citizen's 补正 with the ticket's code: attached to the ticket, its clock runs again."""
    board.pre.check(request, token)
    board.own(request, no, code)  # throttled like a lookup
    try:
        t = board.tickets.supply(no, text=text, via="board")
    except InvalidInput as exc:
        return board.show(request, no, code, error=exc.user_message, status_code=400)
    board.audit.record(
        "board_supplement",
        actor="citizen",
        ip=client_ip(request, board.config.trusted_proxies),
        target=t.no,
        detail={"length": len(text.strip()), "due_date": t.due_date.isoformat()},
    )
    return board.show(
        request, no, code, notice=f"已收到您的补充，办理时限恢复计算，答复期限为{t.due_date.isoformat()}"
    )


def build_board_router(
    *,
    sessions: sessionmaker[Session],
    tickets: TicketService,
    config: ConsoleConfig,
    accounts: Accounts | None = None,
    audit: AuditLog | None = None,
    sensitive: SensitiveWords | None = None,
) -> APIRouter:
    """The /board router: this module's routes with the services the app passes bound to each request."""
    board = Board(
        words=(sensitive or SensitiveWords(sessions)).mask,
        tickets=tickets,
        config=config,
        accounts=accounts or Accounts(sessions, config),
        audit=audit or AuditLog(sessions),
        pre=PreCsrf(config),
    )
    wrapper = APIRouter(
        route_class=ConsoleRoute, include_in_schema=False, dependencies=[Depends(board.bind())]
    )
    wrapper.include_router(router)
    return wrapper


__all__ = ["Board", "BoardDep", "build_board_router", "own_entry", "public_entry", "router"]
