"""Console routes of one FAQ (/console/faqs/{id}; the list is `kb`'s): its page (the form for those
who may change it, else a read-only view, with its usage and its history with field diffs), saving it
(readers only drafts of their own unit) and publishing it (the bot uses the new answer at once).
Edits carry the FAQ's sequence number so that a concurrent edit is a 409 with the form kept; every
edit and publication is audited.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.conflict_views import describe, may_override, override_wanted
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
from handoff.console.faq_views import history_entries, may_change, may_read, policy_labels
from handoff.console.web import ConsoleRoute, render
from knowledge.errors import Conflict, InvalidInput, NotFound, PolicybotError
from knowledge.faqs import FaqRecord
from knowledge.faqs.catalog import FaqCatalog
from knowledge.faqs.conflicts import PhrasingConflicts

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

FaqText = Annotated[str, Form(max_length=25_000)]
FaqLine = Annotated[str, Form(max_length=600)]


def editable_faq(console: Console, staff: Staff, faq_id: str) -> FaqRecord:
    """An FAQ this user may edit: any of their units', or only drafts for drafting-unit readers."""
    rec = console.faqs.get(faq_id)
    if rec is None or not may_change(staff.user, rec):
        raise NotFound("未找到该问答", f"FAQ {faq_id} hidden from {staff.user.username}")
    return rec


@router.get("/faqs/{faq_id}")
def faq_page(staff: FaqDrafter, console: ConsoleDep, request: Request, faq_id: str) -> Response:
    rec = console.faqs.get(faq_id)
    if rec is None or not may_read(staff.user, rec):
        raise NotFound("未找到该问答", f"FAQ {faq_id} hidden from {staff.user.username}")
    return render_faq(console, request, staff, rec)


def render_faq(
    console: Console, request: Request, staff: Staff, rec: FaqRecord, *, status_code: int = 200, **extra: Any
) -> Response:
    """The page of one FAQ as it is now (`extra`: an error, a refused change to show)."""
    ctx = base(
        request,
        staff,
        title=f"问答 {rec.id}",
        f=rec,
        form=_faq_form(rec),
        units=console.known_departments(),
        editable=may_change(staff.user, rec),
        may_edit=staff.user.may_edit_faq(rec.unit),
        history=history_entries(console.faqs.history(rec.id)),
        usage=FaqCatalog(console.sessions).usage(rec.id),
        source_name=policy_labels(console.kb, (rec.source_policy or "",)).get(rec.source_policy or "", ""),
    )
    ctx.update(extra)
    return render(request, "faq.html", ctx, status_code=status_code)


def save_faq(
    console: Console, request: Request, staff: Staff, faq_id: str, form: dict[str, str], *, publish: bool
) -> Response:
    """Save (and publish) one FAQ. A change that would take existing phrasings from other FAQs is
    refused with the list (knowledge.faqs.conflicts); an admin may confirm it, which is audited."""
    faq_store = console.faqs
    rec = editable_faq(console, staff, faq_id)
    fields = _faq_fields(form)
    confirm = override_wanted(staff, form.get("confirm_conflicts", ""))
    try:
        if not staff.user.may_draft_faq(fields["unit"]):
            raise InvalidInput("只能选择您所在部门作为制文单位", "unit outside the user's departments")
        expected = int(form.get("seq") or 0) or None
        updated = faq_store.edit(
            rec.id, by=staff.user.username, expected_seq=expected, confirm_conflicts=confirm, **fields
        )
        if updated.seq != rec.seq:
            console.record(staff, "faq_edit", rec.id, fields=sorted(fields))
            _audit_confirmed(console, staff, rec.id, updated.seq)
        if publish:
            updated = faq_store.publish(
                rec.id, by=staff.user.username, expected_seq=updated.seq, confirm_conflicts=confirm
            )
            console.kb.refresh(force=True)
            console.record(staff, "faq_publish", rec.id, question=updated.question)
            _audit_confirmed(console, staff, rec.id, updated.seq)
    except (PolicybotError, ValueError) as exc:
        message = exc.user_message if isinstance(exc, PolicybotError) else "表单内容不正确"
        if isinstance(exc, Conflict):
            message = "该问答已被他人修改，请刷新后再编辑（您填写的内容已保留）"
        current = faq_store.get(rec.id) or rec
        form = dict(form, seq=str(current.seq))  # the edit may have been saved before publishing failed
        extra: dict[str, Any] = {"error": message, "form": form}
        if isinstance(exc, PhrasingConflicts):
            verb = "发布" if publish else "保存"
            extra["error"] = f"未{verb}：{verb}后以下已有问法会被错误答复。请修改相似问法或标准问题后重试。"
            extra["conflicts"] = describe(list(exc.conflicts))
            extra["can_confirm"] = may_override(staff)
        status = 409 if isinstance(exc, Conflict | PhrasingConflicts) else 400
        return render_faq(console, request, staff, current, status_code=status, **extra)
    done = "faq_published" if publish else "saved"
    return RedirectResponse(f"/console/faqs/{rec.id}?done={done}", status_code=303)


def _audit_confirmed(console: Console, staff: Staff, faq_id: str, seq: int) -> None:
    """Audit a change an admin published despite conflicts (the FAQ history holds the list too)."""
    last = console.faqs.history(faq_id)[-1]
    if last.seq == seq and last.note.startswith("确认冲突"):
        console.record(staff, "faq_conflicts_confirmed", faq_id, note=last.note[:1000])


@router.post("/faqs/{faq_id}")
def faq_save(
    staff: FaqDrafter,
    console: ConsoleDep,
    request: Request,
    faq_id: str,
    question: FaqLine = "",
    similar: FaqText = "",
    answer: FaqText = "",
    tags: FaqLine = "",
    unit: FaqLine = "",
    source_policy: FaqLine = "",
    source_article: FaqLine = "",
    service_url: FaqLine = "",
    seq: Annotated[str, Form(max_length=20)] = "",
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    form = dict(
        confirm_conflicts=confirm_conflicts,
        question=question,
        similar=similar,
        answer=answer,
        tags=tags,
        unit=unit,
        source_policy=source_policy,
        source_article=source_article,
        service_url=service_url,
        seq=seq,
    )
    return save_faq(console, request, staff, faq_id, form, publish=False)


@router.post("/faqs/{faq_id}/publish")
def faq_publish(
    staff: FaqEditor,
    console: ConsoleDep,
    request: Request,
    faq_id: str,
    question: FaqLine = "",
    similar: FaqText = "",
    answer: FaqText = "",
    tags: FaqLine = "",
    unit: FaqLine = "",
    source_policy: FaqLine = "",
    source_article: FaqLine = "",
    service_url: FaqLine = "",
    seq: Annotated[str, Form(max_length=20)] = "",
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    form = dict(
        confirm_conflicts=confirm_conflicts,
        question=question,
        similar=similar,
        answer=answer,
        tags=tags,
        unit=unit,
        source_policy=source_policy,
        source_article=source_article,
        service_url=service_url,
        seq=seq,
    )
    return save_faq(console, request, staff, faq_id, form, publish=True)


def _faq_form(rec: FaqRecord) -> dict[str, str]:
    return {
        "question": rec.question,
        "similar": "\n".join(rec.similar),
        "answer": rec.answer,
        "tags": "，".join(rec.tags),
        "unit": rec.unit or "",
        "source_policy": rec.source_policy or "",
        "source_article": rec.source_article or "",
        "service_url": rec.service_url or "",
        "seq": str(rec.seq),
    }


def _faq_fields(form: dict[str, str]) -> dict[str, Any]:
    return {
        "question": form["question"].strip(),
        "similar": [s.strip() for s in form["similar"].splitlines() if s.strip()],
        "answer": form["answer"].strip(),
        "tags": split_lines(form["tags"]),
        "unit": form["unit"].strip() or None,
        "source_policy": form["source_policy"].strip() or None,
        "source_article": form["source_article"].strip() or None,
        "service_url": form.get("service_url", "").strip() or None,
    }
