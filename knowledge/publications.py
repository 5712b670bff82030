"""Publications: the moment a policy or an FAQ is published, named so that whoever sends messages
about it can act in the same transaction.

A store that publishes something (`FaqStore`, `PolicyStore`) calls `faq_published` / `policy_published`
(`announce`) inside its own write transaction; the sender (bot.subscriptions) registers one handler
per sessionmaker with `on_publications`, which runs in that same transaction just before it commits
(SQLAlchemy's ``before_commit``), so the publication and the messages it causes commit together or
not at all. This package never imports the sender: it only says what was published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

_PENDING = "policybot_publications"
_HANDLER = "_policybot_publication_handler"


@dataclass(frozen=True)
class Publication:
    """What was just published: a policy (``kind`` policy, `path` /policies/<id>) or an FAQ (``kind``
    faq, `path` /faq#faq-<id>). `version` tells publications of the same item apart; `phrasings`
    (an FAQ's question and similar phrasings) and `origin_tags` (its other tags, e.g. the weekly
    report's or a ticket's) let the sender find the citizens who asked it."""

    kind: str
    id: str
    version: int
    title: str
    doc_no: str | None
    summary: str
    tags: tuple[str, ...]
    path: str
    phrasings: tuple[str, ...] = ()
    origin_tags: tuple[str, ...] = field(default=())
    answer: str = ""
    citation: str = ""


PublicationHandler = Callable[[Session, list[Publication]], None]


def announce(session: Session, publication: Publication) -> None:
    """Record a publication in `session`'s transaction (handled just before it commits)."""
    session.info.setdefault(_PENDING, []).append(publication)


def on_publications(sessions: sessionmaker[Session], handler: PublicationHandler) -> None:
    """Run `handler(session, publications)` before each commit of a transaction that announced
    something. One handler per sessionmaker: registering again replaces it."""
    first = getattr(sessions, _HANDLER, None) is None
    setattr(sessions, _HANDLER, handler)
    if not first:
        return

    def before_commit(session: Session) -> None:
        pubs = session.info.pop(_PENDING, None)
        current = getattr(sessions, _HANDLER, None)
        if pubs and current is not None:
            current(session, list(pubs))

    def after_rollback(session: Session, previous_transaction: Any) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_soft_rollback", after_rollback)


def faq_published(s: Session, values: dict[str, Any], version: int) -> None:
    """Announce an FAQ that has just become published (its row values as the FAQ store keeps them)."""
    from knowledge.models import Policy

    source = str(values.get("source_policy") or "").strip()
    policy = None
    if source:
        policy = s.get(Policy, source) or s.scalars(select(Policy).where(Policy.doc_no == source)).first()
    cited = f"《{policy.title}》" + (f"（{policy.doc_no}）" if policy.doc_no else "") if policy else source
    article = str(values.get("source_article") or "").strip()
    tags = tuple(str(t) for t in values.get("tags") or ())
    announce(
        s,
        Publication(
            kind="faq",
            id=str(values["id"]),
            version=version,
            title=str(values.get("question") or ""),
            doc_no=policy.doc_no if policy else None,
            summary=one_line(str(values.get("answer") or "")),
            tags=tags,
            path=f"/faq#faq-{values['id']}",
            phrasings=(str(values.get("question") or ""), *(str(x) for x in values.get("similar") or ())),
            origin_tags=tags,
            answer=str(values.get("answer") or ""),
            citation=" ".join(x for x in (cited, article) if x),
        ),
    )


def policy_published(s: Session, policy: Any, first_passage: str) -> None:
    """Announce a policy imported for the first time (a `Policy` row in the caller's session)."""
    announce(
        s,
        Publication(
            kind="policy",
            id=str(policy.id),
            version=int(policy.seq or 0),
            title=str(policy.title),
            doc_no=policy.doc_no,
            summary=one_line(first_passage),
            tags=tuple(str(t) for t in policy.tags or ()),
            path=f"/policies/{policy.id}",
        ),
    )


def one_line(text: str, limit: int = 60) -> str:
    """The first sentence of a text, at most `limit` characters: a publication's summary."""
    flat = " ".join((text or "").split())
    for stop in "。！？；":
        i = flat.find(stop)
        if 0 <= i < limit:
            return flat[: i + 1]
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__ = [
    "Publication",
    "PublicationHandler",
    "announce",
    "faq_published",
    "on_publications",
    "one_line",
    "policy_published",
]
