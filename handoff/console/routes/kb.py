"""Console routes of the knowledge base (/console/faqs and /console/kb/export): every FAQ a user may
read (drafts only of the units they may draft for), searched by text or by the matcher (ranked by
score), filtered by status, drafting unit, tag, source policy and validity (current, expired, not
yet valid, expiring soon), sorted by id, latest change, how often it was asked or its rating, one
page at a time; retiring an entry and restoring an earlier version (editors of its unit; the bot
follows at once; audited); and the export in the formats of `policybot kb export`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.conflict_views import guarded_write, override_wanted, refusal
from handoff.console.deps import KB_CURATORS, PREFIX, AnyUser, Console, ConsoleDep, FaqEditor, Staff, base
from handoff.console.faq_views import draft_units, inactive_policy_keys, may_read, policy_labels
from handoff.console.routes.faqs import render_faq
from handoff.console.web import ConsoleRoute, render
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.faqs import STATUS_LABELS, FaqRecord
from knowledge.faqs.catalog import EXPIRING_DAYS, SORTS, VALIDITY, CatalogFilter, FaqCatalog
from knowledge.faqs.conflicts import PhrasingConflicts
from knowledge.models import china_today

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

MATCH_HITS: Final = 50
EXPORT_TYPES: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
Choice = Annotated[str, Query(max_length=200)]


def readable_faq(console: Console, staff: Staff, faq_id: str) -> FaqRecord:
    rec = console.faqs.get(faq_id)
    if rec is None or not may_read(staff.user, rec):
        raise NotFound("未找到该问答", f"FAQ {faq_id} hidden from {staff.user.username}")
    return rec


def _seq(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@router.get("/faqs")
def faq_list(
    staff: AnyUser,
    console: ConsoleDep,
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    mode: Annotated[str, Query(pattern="^(text|match)?$")] = "text",
    status: Annotated[str, Query(pattern="^(draft|published|retired)?$")] = "",
    unit: Choice = "",
    tag: Choice = "",
    source: Choice = "",
    validity: Annotated[str, Query(pattern="^(current|expired|pending|expiring)?$")] = "",
    sort: Annotated[str, Query(pattern="^(id|recent|asked|rating|useless)?$")] = "id",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    units = draft_units(staff.user)
    scores: dict[str, tuple[float, str]] = {}
    ids: tuple[str, ...] | None = None
    if mode == "match" and q.strip():
        console.kb.refresh()
        hits = console.kb.matcher.search(q, k=MATCH_HITS)
        scores = {h.faq_id: (h.score, h.matched_text) for h in hits}
        ids = tuple(h.faq_id for h in hits)
    filt = CatalogFilter(
        text=q if mode != "match" else "",
        status=status,
        unit=unit,
        tag=tag,
        source_policy=source,
        validity=validity,
        ids=ids,
        draft_units=units,
    )
    catalog = FaqCatalog(console.sessions)
    result = catalog.page(
        filt,
        sort=sort or "id",
        page=page,
        page_size=console.config.page_size,
        today=china_today(),
        inactive_policies=inactive_policy_keys(console.kb),
    )
    facets = catalog.facets(draft_units=units)
    chosen = dict(
        q=q, mode=mode, status=status, unit=unit, tag=tag, source=source, validity=validity, sort=sort or "id"
    )
    params = {k: v for k, v in chosen.items() if v and (k, v) not in (("mode", "text"), ("sort", "id"))}
    today = china_today()
    return render(
        request,
        "kb_list.html",
        base(
            request,
            staff,
            title="问答库",
            result=result,
            facets=facets,
            policy_names=policy_labels(console.kb, facets.source_policies),
            scores=scores,
            f=chosen,
            drafts=catalog.page(
                CatalogFilter(status="draft", draft_units=units), page_size=1, today=china_today()
            ).total,
            query=urlencode(params),
            sorts=SORTS,
            validity_labels=VALIDITY,
            status_labels=STATUS_LABELS,
            expiring_days=EXPIRING_DAYS,
            today=today,
            soon=today + dt.timedelta(days=EXPIRING_DAYS),
            may_export_all=staff.user.role in KB_CURATORS,
        ),
    )


STALE: Final = "该问答已被他人修改，以下为最新内容，请确认后再操作"


@router.post("/faqs/{faq_id}/retire")
def faq_retire(
    staff: FaqEditor,
    console: ConsoleDep,
    request: Request,
    faq_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    seq: Annotated[str, Form(max_length=20)] = "",
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    rec = readable_faq(console, staff, faq_id)
    if not staff.user.may_edit_faq(rec.unit):
        raise NotFound("未找到该问答", f"FAQ {faq_id}: {staff.user.username} may not edit")
    if rec.status == "retired":  # e.g. retired in another tab meanwhile
        return render_faq(console, request, staff, rec, status_code=409, error="该问答已下线")
    why = reason.strip()
    try:
        guarded_write(
            console,
            staff,
            lambda ok: console.faqs.retire(
                rec.id, by=staff.user.username, reason=why, expected_seq=_seq(seq), confirm_conflicts=ok
            ),
            confirm=override_wanted(staff, confirm_conflicts),
            target=rec.id,
            via="retire",
        )
    except Conflict:
        return render_faq(console, request, staff, console.faqs.require(rec.id), status_code=409, error=STALE)
    except PhrasingConflicts as exc:
        refused = refusal(
            exc,
            staff,
            title="未下线：下线后以下已有问法会被错误答复",
            action=f"/console/faqs/{rec.id}/retire",
            button="仍然下线",
            fields={"reason": why, "seq": str(rec.seq)},
        )
        return render_faq(console, request, staff, rec, status_code=409, refused=refused, retire_reason=why)
    console.kb.refresh(force=True)
    console.record(staff, "faq_retire", rec.id, reason=why[:200], question=rec.question)
    return RedirectResponse(f"/console/faqs/{rec.id}?done=faq_retired", status_code=303)


@router.post("/faqs/{faq_id}/restore")
def faq_restore(
    staff: FaqEditor,
    console: ConsoleDep,
    request: Request,
    faq_id: str,
    version: Annotated[int, Form(ge=1, le=1_000_000)],
    seq: Annotated[str, Form(max_length=20)] = "",
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    rec = readable_faq(console, staff, faq_id)
    if not staff.user.may_edit_faq(rec.unit):
        raise NotFound("未找到该问答", f"FAQ {faq_id}: {staff.user.username} may not edit")
    snapshot = next((v.snapshot for v in console.faqs.history(rec.id) if v.version_no == version), None)
    if snapshot is None:
        raise NotFound(f"问答 {rec.id} 没有第 {version} 版", f"FAQ {faq_id} has no version {version}")
    if not staff.user.may_edit_faq(snapshot.get("unit")):
        raise InvalidInput(
            "该版本的制文单位不是您所在的部门，不能恢复", f"version {version} belongs to another unit"
        )
    try:
        updated = guarded_write(
            console,
            staff,
            lambda ok: console.faqs.restore(
                rec.id, version, by=staff.user.username, expected_seq=_seq(seq), confirm_conflicts=ok
            ),
            confirm=override_wanted(staff, confirm_conflicts),
            target=rec.id,
            via="restore",
        )
    except Conflict:
        return render_faq(console, request, staff, console.faqs.require(rec.id), status_code=409, error=STALE)
    except PhrasingConflicts as exc:
        refused = refusal(
            exc,
            staff,
            title=f"未恢复：恢复到第 {version} 版后以下已有问法会被错误答复",
            action=f"/console/faqs/{rec.id}/restore",
            button=f"仍然恢复到第 {version} 版",
            fields={"version": str(version), "seq": str(rec.seq)},
        )
        return render_faq(console, request, staff, rec, status_code=409, refused=refused)
    console.kb.refresh(force=True)
    console.record(staff, "faq_restore", rec.id, version=version, changed=updated.seq != rec.seq)
    return RedirectResponse(f"/console/faqs/{rec.id}?done=faq_restored", status_code=303)


@router.get("/kb/export")
def kb_export(
    staff: AnyUser,
    console: ConsoleDep,
    format: Annotated[str, Query(pattern="^(xlsx|csv|jsonl)$")] = "xlsx",
    status: Annotated[str, Query(pattern="^(draft|published|retired|all)?$")] = "published",
) -> Response:
    """The whole store (or one status) for admins and supervisors; published entries for others
    (drafts of other units are not theirs to read)."""
    wanted = None if status in ("", "all") else status
    if wanted != "published" and staff.user.role not in KB_CURATORS:
        raise InvalidInput("您只能导出已发布的问答", f"{staff.user.role} exports published only")
    with tempfile.TemporaryDirectory(prefix="policybot-export-") as tmp:
        path = Path(tmp) / f"faqs.{format}"
        n = console.faqs.export_file(path, fmt=format, status=wanted)
        data = path.read_bytes()
    console.record(staff, "faq_export", status or "all", format=format, rows=n)
    name = f"faqs-{wanted or 'all'}-{china_today():%Y%m%d}.{format}"
    headers: dict[str, Any] = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=EXPORT_TYPES[format], headers=headers)
