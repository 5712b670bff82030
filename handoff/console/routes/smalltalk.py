"""Console routes of the 寒暄语 page (administrators): each small-talk intent with its phrases and its
reply; phrases are added and removed, the reply changed, an intent reset to the built-in table. The
storage and the validation are `knowledge.smalltalk`; a change reaches every worker's dialogue within
seconds. Every change is audited.
"""

from collections.abc import Callable
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


def _change(
    console: Console,
    request: Request,
    staff: Staff,
    intent: str,
    event: str,
    apply: Callable[[SmallTalkStore], dict[str, str]],
) -> Response:
    """Apply one change to `intent` (`apply` returns the audit detail), audit it as `event` and go
    back to the intent, or show the page again with the refusal."""
    try:
        detail = apply(_store(console))
    except PolicybotError as exc:
        return _page(console, request, staff, exc.user_message, intent)
    console.record(staff, event, intent, **detail)
    return RedirectResponse(f"{PAGE}?done=smalltalk#st-{intent}", status_code=303)


@router.get("/admin/smalltalk")
def smalltalk_page(staff: Admin, console: ConsoleDep, request: Request) -> Response:
    return _page(console, request, staff)


@router.post("/admin/smalltalk/{intent}/phrases")
def phrase_add(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, phrase: Phrase = ""
) -> Response:
    return _change(
        console,
        request,
        staff,
        intent,
        "smalltalk_phrase_add",
        lambda st: {"phrase": st.add_phrase(intent, phrase)},
    )


@router.post("/admin/smalltalk/{intent}/phrases/delete")
def phrase_delete(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, phrase: Phrase = ""
) -> Response:
    def remove(st: SmallTalkStore) -> dict[str, str]:
        st.remove_phrase(intent, phrase)
        return {"phrase": phrase}

    return _change(console, request, staff, intent, "smalltalk_phrase_delete", remove)


@router.post("/admin/smalltalk/{intent}/reply")
def reply_set(
    staff: Admin, console: ConsoleDep, request: Request, intent: Intent, reply: ReplyText = ""
) -> Response:
    return _change(
        console, request, staff, intent, "smalltalk_reply", lambda st: {"reply": st.set_reply(intent, reply)}
    )


@router.post("/admin/smalltalk/{intent}/reset")
def intent_reset(staff: Admin, console: ConsoleDep, request: Request, intent: Intent) -> Response:
    def reset(st: SmallTalkStore) -> dict[str, str]:
        st.reset(intent)
        return {}

    return _change(console, request, staff, intent, "smalltalk_reset", reset)
