"""Console routes of the matcher's tools: the synonym sets (/console/kb/synonyms: every user reads
them; admins and supervisors add, edit and delete them, since a set changes how every FAQ matches;
the bot follows at once; audited) and the hit test (/console/hit-test, MaxKB's 命中测试): a typed
question's normalisation stage by stage, its words, the top FAQ hits with scores and matched
phrasing (including those not given because they are not current), the decision the bot would
make and the thresholds with the comparison that produced it. The hit test writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.conflict_views import guarded_write, override_wanted, refusal
from handoff.console.deps import KB_CURATORS, PREFIX, AnyUser, Console, ConsoleDep, KbCurator, base
from handoff.console.web import ConsoleRoute, render
from knowledge.answer import AskResult
from knowledge.errors import PolicybotError
from knowledge.faqs.conflicts import PhrasingConflicts
from knowledge.matcher import Thresholds
from knowledge.models import china_today

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

HIT_TEST_K: Final = 10
STAGES: Final = {
    "unified": "统一写法（全角半角、大小写、繁体转简体、去标点）",
    "fillers": "去掉客套话",
    "synonyms": "同义词替换",
}
DECISIONS: Final = {
    "answer": "直接回答",
    "clarify": "请用户选择（澄清）",
    "passage": "引用政策原文",
    "none": "无法回答，建议留言",
}
Terms = Annotated[str, Form(max_length=5000)]
_TERM_SPLIT = re.compile(r"[\s,，、;；|]+")


def _terms(text: str) -> list[str]:
    """Terms typed on one line, separated by spaces, commas, 顿号 or semicolons."""
    return [t for t in _TERM_SPLIT.split(text) if t]


# --- synonym sets -----------------------------------------------------------------------------------
def _synonyms_page(
    console: Console, request: Request, staff: AnyUser, *, status: int = 200, **extra: object
) -> Response:
    ctx = base(
        request,
        staff,
        title="同义词",
        sets=console.faqs.synonym_sets(),
        may_edit=staff.user.role in KB_CURATORS,
        terms="",
    )
    ctx.update(extra)
    return render(request, "kb_synonyms.html", ctx, status_code=status)


@router.get("/kb/synonyms")
def synonyms(staff: AnyUser, console: ConsoleDep, request: Request) -> Response:
    return _synonyms_page(console, request, staff)


Confirm = Annotated[str, Form(max_length=1)]


def _refused(
    console: Console, request: Request, staff: AnyUser, exc: PhrasingConflicts, *, title: str, action: str,
    button: str, hidden_terms: str = "", **extra: object,
) -> Response:  # fmt: skip
    fields = {"terms": hidden_terms} if hidden_terms else {}
    refused = refusal(exc, staff, title=title, action=action, button=button, fields=fields)
    return _synonyms_page(console, request, staff, status=409, refused=refused, **extra)


@router.post("/kb/synonyms")
def synonyms_add(
    staff: KbCurator,
    console: ConsoleDep,
    request: Request,
    terms: Terms = "",
    confirm_conflicts: Confirm = "",
) -> Response:
    try:
        set_id = guarded_write(
            console,
            staff,
            lambda ok: console.faqs.add_synonyms(_terms(terms), by=staff.user.username, confirm_conflicts=ok),
            confirm=override_wanted(staff, confirm_conflicts),
            target="synonyms",
            via="synonyms_add",
        )
    except PhrasingConflicts as exc:
        return _refused(
            console, request, staff, exc, title=f"未添加同义词组「{terms.strip()}」：添加后以下已有问法会被错误答复",
            action="/console/kb/synonyms", button="仍然添加", hidden_terms=terms, terms=terms,
        )  # fmt: skip
    except PolicybotError as exc:
        return _synonyms_page(console, request, staff, status=400, error=exc.user_message, terms=terms)
    console.kb.refresh(force=True)
    console.record(staff, "synonyms_add", str(set_id), terms=terms[:500])
    return RedirectResponse("/console/kb/synonyms?done=synonyms", status_code=303)


@router.post("/kb/synonyms/{set_id}")
def synonyms_edit(
    staff: KbCurator,
    console: ConsoleDep,
    request: Request,
    set_id: int,
    terms: Terms = "",
    confirm_conflicts: Confirm = "",
) -> Response:
    try:
        guarded_write(
            console,
            staff,
            lambda ok: console.faqs.update_synonyms(
                set_id, _terms(terms), by=staff.user.username, confirm_conflicts=ok
            ),
            confirm=override_wanted(staff, confirm_conflicts),
            target=f"synonyms:{set_id}",
            via="synonyms_edit",
        )
    except PhrasingConflicts as exc:
        return _refused(
            console, request, staff, exc, title=f"未保存同义词组 {set_id}：修改后以下已有问法会被错误答复",
            action=f"/console/kb/synonyms/{set_id}", button="仍然保存", hidden_terms=terms, editing=set_id,
            edit_terms=terms,
        )  # fmt: skip
    except PolicybotError as exc:
        return _synonyms_page(
            console, request, staff, status=400, error=exc.user_message, editing=set_id, edit_terms=terms
        )
    console.kb.refresh(force=True)
    console.record(staff, "synonyms_edit", str(set_id), terms=terms[:500])
    return RedirectResponse("/console/kb/synonyms?done=synonyms", status_code=303)


@router.post("/kb/synonyms/{set_id}/delete")
def synonyms_delete(
    staff: KbCurator, console: ConsoleDep, request: Request, set_id: int, confirm_conflicts: Confirm = ""
) -> Response:
    old = next((s.terms for s in console.faqs.synonym_sets() if s.id == set_id), None)
    if old is None:  # e.g. deleted in another tab meanwhile
        return _synonyms_page(console, request, staff, status=404, error=f"同义词组 {set_id} 已不存在")
    try:
        guarded_write(
            console,
            staff,
            lambda ok: console.faqs.delete_synonyms(set_id, by=staff.user.username, confirm_conflicts=ok),
            confirm=override_wanted(staff, confirm_conflicts),
            target=f"synonyms:{set_id}",
            via="synonyms_delete",
        )
    except PhrasingConflicts as exc:
        return _refused(
            console, request, staff, exc, title=f"未删除同义词组 {set_id}（{'、'.join(old)}）：删除后以下已有问法会被错误答复",
            action=f"/console/kb/synonyms/{set_id}/delete", button="仍然删除",
        )  # fmt: skip
    except PolicybotError as exc:
        return _synonyms_page(console, request, staff, status=400, error=exc.user_message)
    console.kb.refresh(force=True)
    console.record(staff, "synonyms_delete", str(set_id), terms="、".join(old)[:500])
    return RedirectResponse("/console/kb/synonyms?done=synonyms_deleted", status_code=303)


# --- hit test ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    text: str
    passed: bool


@dataclass(frozen=True)
class TestHit:
    faq_id: str
    score: float
    matched_text: str
    question: str
    status_note: str  # why it is not given (not current), else ""
    chosen: bool


def explain(result: AskResult, th: Thresholds, passage_threshold: float) -> list[Check]:
    """The comparisons of `knowledge.matcher.decide` (and the passage fallback) for these hits."""
    scores = [h.score for h in result.hits]
    top = scores[0] if scores else 0.0
    second = scores[1] if len(scores) > 1 else 0.0
    checks = [
        Check(f"最高分 {top:.3f} ≥ 澄清阈值 {th.clarify:.2f}（低于此分不给任何问答）", top >= th.clarify),
        Check(f"最高分 {top:.3f} ≥ 直接回答阈值 {th.answer:.2f}", top >= th.answer),
        Check(
            f"领先第二名 {top - second:.3f}（{top:.3f} − {second:.3f}）≥ 领先幅度 {th.margin:.2f}",
            top - second >= th.margin,
        ),
    ]
    if result.decision in ("passage", "none"):
        best = max((p.score for p in result.passages), default=0.0)
        checks.append(
            Check(
                f"政策原文最高分 {best:.3f} ≥ 原文引用阈值 {passage_threshold:.2f}",
                result.decision == "passage",
            )
        )
    return checks


@router.get("/hit-test")
def hit_test(
    staff: AnyUser,
    console: ConsoleDep,
    request: Request,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    kb = console.kb
    ctx = base(request, staff, title="命中测试", q=q, stages=[], words=[], hits=[], result=None, checks=[])
    ctx.update(
        stage_labels=STAGES,
        decisions=DECISIONS,
        thresholds=kb.thresholds,
        passage_threshold=kb.passage_threshold,
    )
    if q.strip():
        kb.refresh()
        result = kb.ask(q)
        chosen = {h.faq_id for h in result.hits} if result.decision == "clarify" else {result.faq_id}
        today = china_today()
        hits = []
        for h in kb.matcher.search(q, k=HIT_TEST_K):
            rec = kb.record(h.faq_id)
            if rec is None:
                continue
            ok, reason = kb.policies.faq_validity(rec.source_policy, rec.valid_from, rec.valid_to, today)
            note = "" if ok else f"不作答：{reason}"
            hits.append(TestHit(h.faq_id, h.score, h.matched_text, rec.question, note, h.faq_id in chosen))
        stages = kb.text.normalise_steps(q)
        ctx.update(
            result=result,
            hits=hits,
            stages=stages,
            words=kb.text.tokens_of_normalised(stages[-1][1]) if stages else [],
            checks=explain(result, kb.thresholds, kb.passage_threshold),
        )
    return render(request, "kb_hit_test.html", ctx)
