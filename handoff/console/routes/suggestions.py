"""Console routes of learned phrasings (/console/suggestions): the candidates knowledge.suggestions
collected from use (clarify choices, 有用 ratings of narrow answers, tickets answered with an FAQ),
per drafting unit, each with the conflicts approving it would cause; approve (FAQ editors of the
unit: the phrasing joins the FAQ as a new version, through the conflict check) and reject (also the
unit's drafting readers). Admins and supervisors also pin the welcome questions here
(knowledge.welcome). Every decision is audited.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.deps import (
    PREFIX,
    Console,
    ConsoleDep,
    FaqDrafter,
    FaqEditor,
    Staff,
    base,
    split_lines,
)
from handoff.console.web import ConsoleRoute, render
from knowledge.errors import PolicybotError
from knowledge.suggestions import SOURCE_LABELS, SuggestionStore
from knowledge.welcome import WelcomePins

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

STATUS_TABS = (("pending", "待审核"), ("approved", "已采纳"), ("rejected", "已拒绝"))
PIN_ROLES = ("admin", "supervisor")


def page(
    console: Console,
    request: Request,
    staff: Staff,
    *,
    status: str = "pending",
    unit: str = "",
    error: str = "",
    pin_text: str | None = None,
    status_code: int = 200,
) -> Response:
    """The review page: the user's units' candidates of one status (pending ones with conflicts)."""
    status = status if status in dict(STATUS_TABS) else "pending"
    store = SuggestionStore(console.kb)
    store.mine()
    user = staff.user
    every = user.role in PIN_ROLES  # admins and supervisors edit every unit's FAQs
    units = None if every else list(user.departments)
    if unit:
        units = [unit] if units is None or unit in units else []
    rows = store.list(status=status, units=units, with_conflicts=status == "pending", limit=300)
    pins = _pins(console) if user.role in PIN_ROLES else []
    ctx = base(
        request,
        staff,
        title="建议问法",
        rows=rows,
        counts=store.counts(units=units),
        status=status,
        tabs=STATUS_TABS,
        unit=unit,
        units=sorted({u for u in console.known_departments() if every or u in user.departments}),
        labels=SOURCE_LABELS,
        may_edit={r.id: user.may_edit_faq(r.unit) for r in rows},
        may_reject={r.id: user.may_draft_faq(r.unit) for r in rows},
        can_confirm=user.role == "admin",
        can_pin=user.role in PIN_ROLES,
        pins=pins,
        pin_text=pin_text if pin_text is not None else " ".join(fid for fid, _ in pins),
    )
    ctx["error"] = error
    return render(request, "suggestions.html", ctx, status_code=status_code)


@router.get("/suggestions")
def suggestions_page(
    staff: FaqDrafter,
    console: ConsoleDep,
    request: Request,
    status: Annotated[str, Query(max_length=10)] = "pending",
    unit: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    return page(console, request, staff, status=status, unit=unit)


@router.post("/suggestions")
def suggestions_decide(
    staff: FaqDrafter,
    console: ConsoleDep,
    request: Request,
    action: Annotated[str, Form(max_length=10)] = "",
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI form default)
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
    unit: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    store = SuggestionStore(console.kb)
    user = staff.user
    chosen = store.list(status="pending", ids=ids[:500], limit=500)
    back = f"/console/suggestions?unit={quote(unit)}" if unit else "/console/suggestions?"
    if action == "reject":
        allowed = [r.id for r in chosen if user.may_draft_faq(r.unit)]
        for sid in store.reject(allowed, by=user.username):
            console.record(staff, "suggestion_reject", str(sid))
        return RedirectResponse(f"{back}&done=suggestions_rejected", status_code=303)
    if action != "approve":
        return RedirectResponse(back, status_code=303)
    allowed = [r.id for r in chosen if user.may_edit_faq(r.unit)]
    confirm = confirm_conflicts == "1" and user.role == "admin"
    result = store.approve(allowed, by=user.username, confirm_conflicts=confirm)
    texts = {r.id: r for r in chosen}
    for sid in result.approved:
        r = texts[sid]
        console.record(staff, "suggestion_approve", r.faq_id, suggestion=sid, text=r.text, confirmed=confirm)
    outcome = "suggestions_refused" if result.refused else "suggestions_approved"
    return RedirectResponse(f"{back}&done={outcome}", status_code=303)


@router.post("/suggestions/welcome")
def welcome_pins(
    staff: FaqEditor,
    console: ConsoleDep,
    request: Request,
    faq_ids: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if staff.user.role not in PIN_ROLES:
        return RedirectResponse("/console/suggestions", status_code=303)
    ids = split_lines(faq_ids.replace(" ", ","))
    try:
        WelcomePins(console.sessions).set(ids, by=staff.user.username)
    except PolicybotError as exc:
        return page(console, request, staff, error=exc.user_message, pin_text=faq_ids, status_code=400)
    console.record(staff, "welcome_pins", "", faq_ids=ids)
    return RedirectResponse("/console/suggestions?done=welcome_saved#welcome", status_code=303)


def _pins(console: Console) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for fid in WelcomePins(console.sessions).get():
        rec = console.faqs.get(fid)
        out.append((fid, rec.question if rec else "（已不存在）"))
    return out
