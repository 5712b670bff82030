"""The public FAQ list (/faq, no login; seed 001 §5: 常见问题解答清单在同一页面发布): every published FAQ
that is current today (its source policy not 失效/废止, inside its validity dates: the rule the bot
answers by), grouped by source document with its title and 文号 and each entry's article, and a
search over the same matcher the bot uses (only current entries, best first; those as close as the
bot's clarify threshold open, a few folded related ones when none is). It shows the standard
question, the answer, the article and the drafting unit, never the similar phrasings (they may come
from citizens); personal data that slipped into a text is masked on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response

from handoff.console.web import ConsoleRoute, render
from handoff.privacy import mask
from knowledge.answer import KnowledgeBase
from knowledge.faqs import FaqRecord
from knowledge.models import china_today

SEARCH_HITS: Final = 10
WEAK_HITS: Final = 5
# Answers are staff-written and may name an office phone or address; a citizen's own data may not.
ANSWER_PII: Final = ("mobile", "id_number", "id_like", "bank_card", "email")
OTHER: Final = "其他常见问题"


@dataclass(frozen=True)
class PublicFaq:
    id: str
    question: str
    answer: str
    article: str
    unit: str
    source: str  # 《title》（文号） of the source document, "" when it has none
    score: float = 0.0


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    doc_no: str
    issuer: str
    entries: tuple[PublicFaq, ...]


def _article_key(article: str) -> tuple[int, str]:
    return (0 if article else 1, article)


def build_public_faq_router(*, kb: KnowledgeBase) -> APIRouter:
    router = APIRouter(prefix="/faq", route_class=ConsoleRoute, include_in_schema=False)

    def public(rec: FaqRecord, score: float = 0.0) -> PublicFaq:
        pol = kb.policies.cached(rec.source_policy) if rec.source_policy else None
        source = ""
        if pol is not None:
            source = f"《{pol.title}》" + (f"（{pol.doc_no}）" if pol.doc_no else "")
        elif rec.source_policy:
            source = rec.source_policy
        return PublicFaq(
            rec.id,
            mask(rec.question),
            mask(rec.answer, ANSWER_PII),
            rec.source_article or "",
            rec.unit or "",
            source,
            score,
        )

    def current() -> list[FaqRecord]:
        today = china_today()
        out = []
        for rec in kb.faqs.list(status="published", limit=10**7):
            if (
                rec.answer
                and kb.policies.faq_validity(rec.source_policy, rec.valid_from, rec.valid_to, today)[0]
            ):
                out.append(rec)
        return out

    def groups(records: list[FaqRecord]) -> list[Group]:
        by_source: dict[str, list[FaqRecord]] = {}
        for rec in records:  # one group per policy, whether an FAQ names it by id, 文号 or title
            pol = kb.policies.cached(rec.source_policy) if rec.source_policy else None
            by_source.setdefault(pol.id if pol else (rec.source_policy or ""), []).append(rec)
        out = []
        for key, recs in by_source.items():
            pol = kb.policies.cached(key) if key else None
            recs.sort(key=lambda r: (_article_key(r.source_article or ""), r.id))
            out.append(
                Group(
                    key,
                    pol.title if pol else (key or OTHER),
                    (pol.doc_no or "") if pol else "",
                    (pol.issuer or "") if pol else (recs[0].unit or ""),
                    tuple(public(r) for r in recs),
                )
            )
        out.sort(key=lambda g: (g.key == "", g.title))
        return out

    @router.get("")
    def faq_list(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
        kb.refresh()
        records = current()
        hits: list[PublicFaq] = []
        if q.strip():
            by_id = {r.id: r for r in records}
            for h in kb.matcher.search(q, k=SEARCH_HITS * 2):
                if h.faq_id in by_id and len(hits) < SEARCH_HITS:
                    hits.append(public(by_id[h.faq_id], h.score))
        close = bool(hits) and hits[0].score >= kb.thresholds.clarify
        if not close:
            hits = hits[:WEAK_HITS]  # nothing close: a few related entries, folded
        open_ids = {h.id for h in hits if h.score >= kb.thresholds.clarify}
        return render(
            request,
            "faq_public.html",
            {
                "title": "常见问题解答",
                "user": None,
                "csrf": "",
                "notice": "",
                "error": "",
                "q": q,
                "hits": hits,
                "close": close,
                "open_ids": open_ids,
                "groups": groups(records),
                "total": len(records),
                "today": china_today(),
            },
        )

    return router


__all__ = ["build_public_faq_router"]
