"""The public policy library (/policies, no login, on the board's base template): the list of every
policy document with its 文号, issuer, date, validity label (有效 / 已修订 / 失效 / 废止) and tags,
filtered by status, tag and issuer and searched by title, 文号 or issuer; and one document's page
(/policies/<id>): its articles, each with an anchor (#a-二-二) that answers' citations link to, its
validity and the document that replaced it, the documents it replaced, its related documents by kind
(解读 / 配套 / 依据 / 修订), its service link (hidden while broken) and the published FAQs citing it.
Read only: no forms that change anything, so no CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.web import ConsoleRoute, render
from knowledge.links import LinkHealth
from knowledge.policies import PolicyStore
from knowledge.policies.library import RELATION_KINDS
from knowledge.policies.records import PassageRecord, article_anchor, article_link
from knowledge.policies.validity import STATUSES

PAGE_SIZE: Final = 30
STATUS_CLASS: Final = {"有效": "valid", "已修订": "revised", "失效": "expired", "废止": "repealed"}
SITE: Final = "政策文件库"
Text = Annotated[str, Query(max_length=100)]
StatusQ = Annotated[str, Query(max_length=8)]
TagQ = Annotated[str, Query(max_length=50)]
IssuerQ = Annotated[str, Query(max_length=200)]
PageQ = Annotated[int, Query(ge=1, le=1000)]


@dataclass
class Article:
    """One article of the page: consecutive passages with the same label joined."""

    label: str
    anchor: str
    heading: str
    paragraphs: list[str] = field(default_factory=list)


def articles(passages: list[PassageRecord]) -> list[Article]:
    out: list[Article] = []
    seen: set[str] = set()
    for p in passages:
        if out and out[-1].label == p.label:
            out[-1].paragraphs += [x for x in p.text.split("\n") if x.strip()]
            continue
        anchor = article_anchor(p.label)
        if anchor in seen:  # a label that recurs later (rare): keep ids unique
            anchor = f"{anchor}-{p.ordinal}"
        seen.add(anchor)
        out.append(Article(p.label, anchor, p.heading, [x for x in p.text.split("\n") if x.strip()]))
    return out


def build_library_router(
    *, sessions: sessionmaker[Session], policies: PolicyStore | None = None
) -> APIRouter:
    store = policies or PolicyStore(sessions)
    links = LinkHealth(sessions, refresh_seconds=30.0)
    router = APIRouter(prefix="/policies", route_class=ConsoleRoute, include_in_schema=False)

    def ctx(**extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "user": None,
            "csrf": "",
            "notice": "",
            "error": "",
            "status_class": STATUS_CLASS,
            "site": SITE,
        }
        base.update(extra)
        return base

    @router.get("")
    def listing(
        request: Request,
        q: Text = "",
        status: StatusQ = "",
        tag: TagQ = "",
        issuer: IssuerQ = "",
        page: PageQ = 1,
    ) -> Response:
        rows = store.library(q=q.strip(), status=status, tag=tag, issuer=issuer, limit=2000)
        tags, issuers = store.facets()
        start = (page - 1) * PAGE_SIZE
        filtered = bool(q.strip() or status or tag or issuer)
        return render(
            request,
            "policies.html",
            ctx(
                title=SITE,
                rows=rows[start : start + PAGE_SIZE],
                total=len(rows),
                page=page,
                more=len(rows) > start + PAGE_SIZE,
                q=q.strip(),
                status=status,
                tag=tag,
                issuer=issuer,
                statuses=STATUSES,
                tags=tags,
                issuers=issuers,
                filtered=filtered,
                query_string=_query(q=q.strip(), status=status, tag=tag, issuer=issuer),
            ),
        )

    @router.get("/{policy_id}")
    def detail(request: Request, policy_id: str) -> Response:
        rec = store.get(policy_id[:64])
        if rec is None:
            return render(request, "policy.html", ctx(title="未找到文件", policy=None), status_code=404)
        replacement = store.get(rec.replaced_by) if rec.replaced_by else None
        current = store.current_replacement(rec.id) if rec.replaced_by else None
        related = store.related(rec.id)
        groups = [
            (k, [r.policy for r in related if r.kind == k]) for k in dict.fromkeys(r.kind for r in related)
        ]
        groups.sort(key=lambda g: RELATION_KINDS.index(g[0]) if g[0] in RELATION_KINDS else 99)
        service_broken = bool(rec.service_url) and links.is_broken(rec.service_url or "")
        return render(
            request,
            "policy.html",
            ctx(
                title=rec.title,
                policy=rec,
                articles=articles(store.passages(rec.id)),
                replacement=replacement,
                current=current
                if current is not None and replacement is not None and current.id != replacement.id
                else None,
                replaces=store.replaces(rec.id),
                related=groups,
                faqs=store.citing_faqs(rec.id),
                service_broken=service_broken,
                link=article_link,
            ),
        )

    return router


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v})


__all__ = ["STATUS_CLASS", "Article", "articles", "build_library_router"]
