"""Console routes of the 寒暄语 page (administrators): each small-talk intent with its phrases and its
reply; phrases are added and removed, the reply changed, an intent reset to the built-in table. The
storage and the validation are `knowledge.smalltalk`; a change reaches every worker's dialogue within
seconds. Every change is audited.
"""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.deps import PREFIX, Admin, Console, ConsoleDep, Staff, base
from handoff.console.web import ConsoleRoute, render
from knowledge.errors import NotFound, PolicybotError
from knowledge.smalltalk import MAX_PHRASE, MAX_REPLY, SmallTalkStore

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Intent = Annotated[str, Path(max_length=40, pattern=r"^[a-z_]+$")]
Phrase = Annotated[str, Form(max_length=200)]
ReplyText = Annotated[str, Form(max_length=2000)]
PAGE = "/console/admin/smalltalk"


def _store(console: Console) -> SmallTalkStore:
    if console.smalltalk is None:
        raise NotFound("寒暄语未启用", "console built without a small talk store")
    return console.smalltalk


def _page(console: Console, request: Request, staff: Staff, error: str = "", intent: str = "") -> Response:
    ctx = base(
        request,
        staff,
        title="寒暄语",
        entries=_store(console).entries(),
        max_phrase=MAX_PHRASE,
        max_reply=MAX_REPLY,
        error_intent=intent,
    )
    if error:
        ctx["error"] = error
    return render(request, "smalltalk.html", ctx, status_code=400 if error else 200)


def _done(intent: str) -> Response:
    return RedirectResponse(f"{PAGE}?done=smalltalk#st-{intent}", status_code=303)


@router.get("/admin/smalltalk")
def smalltalk_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return _page(console, request, staff)


@router.post("/admin/smalltalk/{intent}/phrases")
def phrase_add(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, phrase: Phrase = ""
) -> Response:
    try:
        added = _store(console).add_phrase(intent, phrase)
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message, intent)
    console.record(staff, "smalltalk_phrase_add", intent, phrase=added)
    return _done(intent)


@router.post("/admin/smalltalk/{intent}/phrases/delete")
def phrase_delete(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, phrase: Phrase = ""
) -> Response:
    try:
        _store(console).remove_phrase(intent, phrase)
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message, intent)
    console.record(staff, "smalltalk_phrase_delete", intent, phrase=phrase)
    return _done(intent)


@router.post("/admin/smalltalk/{intent}/reply")
def reply_set(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, reply: ReplyText = ""
) -> Response:
    try:
        saved = _store(console).set_reply(intent, reply)
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message, intent)
    console.record(staff, "smalltalk_reply", intent, reply=saved)
    return _done(intent)


@router.post("/admin/smalltalk/{intent}/reset")
def intent_reset(staff: Admin, console: ConsoleDep, request: Request, intent: Intent) -> Response:
    try:
        _store(console).reset(intent)
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message, intent)
    console.record(staff, "smalltalk_reset", intent)
    return _done(intent)
