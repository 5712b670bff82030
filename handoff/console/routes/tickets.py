"""Console routes of one ticket (/console/tickets/{no}): its page (events, delivery state of the
reply, contact data for those allowed, audited as a contact view, matched and live FAQ candidates,
reply templates) and its actions (assign, reply, note, transfer, close, reopen, publish, unpublish,
promote to an FAQ draft; the time-limit card is routes/timelimits.py's), plus the FAQ search of the reply form. Another department's ticket is a
404, as if it did not exist; actions carry the ticket's version so that two staff members never
overwrite each other's reply.
"""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select

from handoff.console.deps import PREFIX, Console, ConsoleDep, Handler, Reader, Staff, base
from handoff.console.handling_views import handling_context
from handoff.console.timelimit_views import time_limit_context
from handoff.console.web import ConsoleRoute, render
from handoff.models import ReplyTemplate
from handoff.tickets import OPEN_STATUSES, RATINGS, EventView, TicketView
from handoff.tickets.promotion import offer_ticket_phrasing, used_faq_answer
from knowledge.answer import KnowledgeBase
from knowledge.db import MAX_ID
from knowledge.errors import Conflict, InvalidInput, NotFound, PolicybotError
from knowledge.faqs import FaqStore
from knowledge.models import CHINA_TZ
from knowledge.suggestions import SuggestionStore

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

FaqSearch = Annotated[str, Query(max_length=200)]
Version = Annotated[int, Form(ge=1, le=MAX_ID)]


def readable(console: Console, staff: Staff, no: str) -> TicketView:
    t = console.tickets.get(no)
    if not staff.user.may_read_ticket(t.department):
        raise NotFound("未找到该留言", f"ticket {no} hidden from {staff.user.username}")
    return t


def handleable(console: Console, staff: Staff, no: str) -> TicketView:
    t = readable(console, staff, no)
    if not staff.user.may_handle_ticket(t.department):
        raise NotFound("未找到该留言", f"ticket {no} not handled by {staff.user.username}")
    return t


def ticket_page(
    console: Console,
    request: Request,
    staff: Staff,
    no: str,
    *,
    error: str = "",
    status_code: int = 200,
    reply_text: str | None = None,
) -> Response:
    t = readable(console, staff, no)
    events = console.tickets.events(t.no)
    show_contact = staff.user.may_see_contact(t.department)
    has_contact = bool(t.contact_name or t.contact_phone)
    if show_contact and has_contact:
        console.record(staff, "contact_view", t.no)
    candidates = _candidates(console.kb, t)
    with console.sessions() as s:
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
        departments=[d.name for d in console.accounts.departments(active_only=True)],  # transfer targets
        reply_templates=reply_templates,
        reply_text=reply_text if reply_text is not None else (t.reply or ""),
        due=console.due_class(t, dt.datetime.now(CHINA_TZ).date()),
        ratings=RATINGS,
        open_statuses=OPEN_STATUSES,
        promoted=console.tickets.promoted_draft(t.no, console.faqs),
        sla=time_limit_context(console, staff, t),  # 办理时限, 延期, 补正 (routes/timelimits.py)
    )
    ctx.update(handling_context(console, staff, t, events))  # categories, interim replies, merges
    ctx["error"] = error
    return render(request, "ticket.html", ctx, status_code=status_code)


@router.get("/tickets/{no}")
def ticket(staff: Reader, console: ConsoleDep, request: Request, no: str) -> Response:
    return ticket_page(console, request, staff, no)


def act(
    console: Console,
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
    t = handleable(console, staff, no)
    try:
        detail = run(t) or {}
    except Conflict as exc:
        return ticket_page(
            console,
            request,
            staff,
            t.no,
            error=exc.user_message + "（您填写的内容已保留）",
            status_code=409,
            reply_text=reply_text,
        )
    except (InvalidInput, NotFound) as exc:
        return ticket_page(
            console, request, staff, t.no, error=exc.user_message, status_code=400, reply_text=reply_text
        )
    console.record(staff, action, t.no, **detail)
    return RedirectResponse(target_after or f"/console/tickets/{t.no}?done={action}", status_code=303)


@router.post("/tickets/{no}/assign")
def assign(staff: Handler, console: ConsoleDep, request: Request, no: str, version: Version) -> Response:
    tickets = console.tickets
    return act(
        console,
        request,
        staff,
        no,
        "assign",
        lambda t: tickets.assign(t.no, staff=staff.user.username, expected_version=version) and None,
    )


@router.post("/tickets/{no}/reply")
def reply(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    text: Annotated[str, Form(max_length=6000)] = "",
    faq_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        done = console.tickets.reply(t.no, staff=staff.user.username, text=text, expected_version=version)
        detail: dict[str, Any] = {"channel": done.channel, "length": len(text.strip())}
        rec = console.kb.record(faq_id.strip()) if faq_id.strip() else None
        if rec is not None and used_faq_answer(text, rec.answer):
            # answered with an existing FAQ: the ticket's wording is a candidate phrasing of it
            offer_ticket_phrasing(SuggestionStore(console.kb), done, rec.id)
            detail["faq"] = rec.id
        return detail

    return act(console, request, staff, no, "reply", run, reply_text=text)


@router.post("/tickets/{no}/note")
def note(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    text: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    tickets = console.tickets
    return act(
        console,
        request,
        staff,
        no,
        "note",
        lambda t: tickets.add_note(t.no, by=staff.user.username, text=text) and None,
    )


@router.post("/tickets/{no}/transfer")
def transfer(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    department: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        console.tickets.transfer(
            t.no,
            to_department=department,
            reason=reason,
            by=staff.user.username,
            expected_version=version,
        )
        return {"from": t.department, "to": department.strip(), "reason": reason}

    target = None if staff.user.may_read_ticket(department.strip()) else "/console/queue?done=transfer"
    return act(console, request, staff, no, "transfer", run, target_after=target)


@router.post("/tickets/{no}/close")
def close(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    reason: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    tickets = console.tickets
    return act(
        console,
        request,
        staff,
        no,
        "close",
        lambda t: (
            tickets.close(t.no, by=staff.user.username, reason=reason or None, expected_version=version)
            and None
        ),
    )


@router.post("/tickets/{no}/reopen")
def reopen(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    reason: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    tickets = console.tickets
    return act(
        console,
        request,
        staff,
        no,
        "reopen",
        lambda t: (
            tickets.reopen(t.no, by=staff.user.username, reason=reason, expected_version=version) and None
        ),
    )


@router.post("/tickets/{no}/publish")
def publish(
    staff: Handler,
    console: ConsoleDep,
    request: Request,
    no: str,
    version: Version,
    question: Annotated[str, Form(max_length=3000)] = "",
    answer: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    def run(t: TicketView) -> dict[str, Any]:
        console.tickets.publish(
            t.no, by=staff.user.username, question=question, reply=answer, expected_version=version
        )
        return {
            "question_edited": question.strip() != t.question,
            "reply_edited": answer.strip() != (t.reply or ""),
        }

    return act(console, request, staff, no, "publish", run)


@router.post("/tickets/{no}/unpublish")
def unpublish(staff: Handler, console: ConsoleDep, request: Request, no: str, version: Version) -> Response:
    tickets = console.tickets
    return act(
        console,
        request,
        staff,
        no,
        "unpublish",
        lambda t: (
            tickets.publish(t.no, by=staff.user.username, published=False, expected_version=version) and None
        ),
    )


@router.post("/tickets/{no}/promote")
def promote(staff: Handler, console: ConsoleDep, request: Request, no: str) -> Response:
    t = handleable(console, staff, no)
    existing = console.tickets.promoted_draft(t.no, console.faqs)
    if existing is not None:
        return RedirectResponse(f"/console/faqs/{existing.id}", status_code=303)
    try:
        rec = console.tickets.promote_to_faq(t.no, by=staff.user.username, faqs=console.faqs)
    except PolicybotError as exc:
        return ticket_page(console, request, staff, t.no, error=exc.user_message, status_code=400)
    console.record(staff, "faq_draft", rec.id, ticket=t.no, question=rec.question)
    return RedirectResponse(f"/console/faqs/{rec.id}?done=draft", status_code=303)


@router.get("/faq-search")
def faq_search(staff: Handler, console: ConsoleDep, q: FaqSearch = "") -> Response:
    return JSONResponse({"items": _search_faqs(console.kb, console.faqs, q)})


# --- helpers -----------------------------------------------------------------------------------------


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
