"""The policy library's data (a mixin of `PolicyStore`): this module owns a policy's validity as staff
set it (status with the policy that replaced it, the expiry date), the relations between policies
(解读 / 配套 / 依据 / 修订, shown together on the policy page), tags of stored policies, the filtered
listing of the public library, the replacement chain an answer follows from a repealed or revised
policy, and which FAQs cite a policy. A status change puts the FAQs citing the policy on their drafting
unit's review list in the same transaction (`knowledge.policies.review`).
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import Faq, Passage, Policy, PolicyRelation, bump_version, china_today
from knowledge.policies.parsing import normalise_doc_no, squash_cjk_spaces
from knowledge.policies.records import PolicyRecord, to_record
from knowledge.policies.validity import INACTIVE_STATUSES, STATUSES, check_status

if TYPE_CHECKING:
    from knowledge.policies.index import PassageIndex

log = logging.getLogger(__name__)

RELATION_KINDS: tuple[str, ...] = ("解读", "配套", "依据", "修订")
# How a relation reads from the other side: B is the 解读 of A -> A is what B 解读s.
REVERSE_LABELS: dict[str, str] = {
    "解读": "被解读文件",
    "配套": "配套",
    "依据": "依据本文件的文件",
    "修订": "被修订文件",
}
SUPERSEDED_STATUSES: frozenset[str] = INACTIVE_STATUSES | {"已修订"}


@dataclass(frozen=True)
class Related:
    kind: str  # 解读 / 配套 / 依据 / 修订, or a REVERSE_LABELS value
    policy: PolicyRecord


@dataclass(frozen=True)
class CitingFaq:
    id: str
    question: str
    unit: str | None
    article: str | None
    status: str
    answer: str = ""


def check_kind(kind: str) -> None:
    if kind not in RELATION_KINDS:
        raise InvalidInput(
            f"关联类型“{kind}”无效，只能是：{'、'.join(RELATION_KINDS)}。", f"invalid relation kind {kind!r}"
        )


def cites(source_policy: str | None, p: Policy | PolicyRecord) -> bool:
    """Whether an FAQ's 来源文件 names this policy (its id, 文号 in any bracket style, or title)."""
    key = (source_policy or "").strip()
    if not key:
        return False
    if key == p.id:
        return True
    if p.doc_no and normalise_doc_no(key) == p.doc_no:
        return True
    return squash_cjk_spaces(key.strip("《》 ")) == p.title


class LibraryMethods:
    """Validity, relations, tags and the public listing of a PolicyStore."""

    sessions: sessionmaker[Session]
    _passages: PassageIndex
    review_due: Callable[[dt.date], dt.date] | None = None  # review list due dates (working days)

    # --- validity -------------------------------------------------------------------------------
    def set_status(
        self,
        policy_id: str,
        status: str,
        *,
        by: str,
        replaced_by: str | None = None,
        today: dt.date | None = None,
    ) -> PolicyRecord:
        """Mark a policy 有效 / 已修订 / 失效 / 废止, with the policy that replaced it. Back to 有效
        clears the replacement. FAQs citing a repealed, expired or revised policy go on their
        drafting unit's review list."""
        from knowledge.policies.review import flag_citing, weekdays_due

        check_status(status)
        # the review's due date before the transaction: the calendar reads its own rows
        due = (self.review_due or weekdays_due)(today or china_today())
        with transaction(self.sessions) as s:
            p = _require(s, policy_id)
            new_by: str | None = p.replaced_by if replaced_by is None else replaced_by.strip() or None
            if status == "有效":
                new_by = None
            if new_by is not None:
                other = _resolve(s, new_by)
                if other.id == p.id:
                    raise InvalidInput("文件不能被自己替代。", f"policy {p.id} replaced by itself")
                if _chain(s, other.id, stop=p.id):
                    raise Conflict(
                        f"《{other.title}》已被本文件替代，不能互相替代。",
                        f"replacement cycle {p.id}<->{other.id}",
                    )
                new_by = other.id
            changed = (p.status, p.replaced_by) != (status, new_by)
            if changed:
                old = p.status
                p.status = status
                p.replaced_by = new_by
                p.seq = bump_version(s)
                p.updated_by = by[:100]
                log.info("policy status id=%s %s->%s replaced_by=%s by=%s", p.id, old, status, new_by, by)
            if status in SUPERSEDED_STATUSES:
                flag_citing(s, p, due)
            record = to_record(p, _count(s, p.id))
        return record

    def set_expiry(self, policy_id: str, expires_on: dt.date | None, *, by: str) -> PolicyRecord:
        """Set (or with None clear) the date a policy stops being valid (有效期至)."""
        with transaction(self.sessions) as s:
            p = _require(s, policy_id)
            if p.expires_on != expires_on:
                p.expires_on = expires_on
                p.seq = bump_version(s)
                p.updated_by = by[:100]
            return to_record(p, _count(s, p.id))

    def current_replacement(self, policy_id: str) -> PolicyRecord | None:
        """The policy in force that (through a chain of replacements) replaced this one, from the
        in-memory copy; None when there is none or the chain ends in an inactive policy."""
        records = self._passages.current().records
        rec = records.get(policy_id)
        seen: set[str] = set()
        while rec is not None and rec.replaced_by and rec.id not in seen:
            seen.add(rec.id)
            rec = records.get(rec.replaced_by)
            if rec is not None and rec.status == "有效":
                return rec
        return None

    # --- relations ------------------------------------------------------------------------------
    def relate(
        self, policy_id: str, kind: str, other_id: str, *, by: str
    ) -> tuple[PolicyRecord, PolicyRecord]:
        """Record that `other` is the 解读 / 配套 / 依据 / 修订 of `policy` (idempotent)."""
        check_kind(kind)
        with transaction(self.sessions) as s:
            p = _resolve(s, policy_id)
            o = _resolve(s, other_id)
            if p.id == o.id:
                raise InvalidInput("文件不能与自己关联。", f"policy {p.id} related to itself")
            exists = s.execute(
                select(PolicyRelation.id).where(
                    PolicyRelation.policy_id == p.id,
                    PolicyRelation.kind == kind,
                    PolicyRelation.other_id == o.id,
                )
            ).scalar_one_or_none()
            if exists is None:
                s.add(PolicyRelation(policy_id=p.id, kind=kind, other_id=o.id, created_by=by[:100]))
                p.seq = bump_version(s)
            return to_record(p, _count(s, p.id)), to_record(o, _count(s, o.id))

    def unrelate(self, policy_id: str, kind: str, other_id: str) -> bool:
        check_kind(kind)
        with transaction(self.sessions) as s:
            p = _resolve(s, policy_id)
            o = _resolve(s, other_id)
            n = s.execute(
                delete(PolicyRelation).where(
                    PolicyRelation.policy_id == p.id,
                    PolicyRelation.kind == kind,
                    PolicyRelation.other_id == o.id,
                )
            ).rowcount  # type: ignore[attr-defined]
            if n:
                p.seq = bump_version(s)
            return bool(n)

    def related(self, policy_id: str) -> builtins.list[Related]:
        """The policy's relations in both directions, in RELATION_KINDS order."""
        with self.sessions() as s:
            out: list[Related] = []
            rows = s.execute(
                select(PolicyRelation, Policy)
                .join(Policy, Policy.id == PolicyRelation.other_id)
                .where(PolicyRelation.policy_id == policy_id)
            ).all()
            out += [Related(r.kind, to_record(p, 0)) for r, p in rows]
            back = s.execute(
                select(PolicyRelation, Policy)
                .join(Policy, Policy.id == PolicyRelation.policy_id)
                .where(PolicyRelation.other_id == policy_id)
            ).all()
            out += [Related(REVERSE_LABELS[r.kind], to_record(p, 0)) for r, p in back]
            order = {k: i for i, k in enumerate((*RELATION_KINDS, *REVERSE_LABELS.values()))}
            out.sort(key=lambda r: (order.get(r.kind, 99), r.policy.issued_on or dt.date.min, r.policy.id))
            return out

    def replaces(self, policy_id: str) -> builtins.list[PolicyRecord]:
        """The policies this one replaced (their `replaced_by` names it)."""
        with self.sessions() as s:
            rows = s.execute(
                select(Policy).where(Policy.replaced_by == policy_id).order_by(Policy.id)
            ).scalars()
            return [to_record(p, 0) for p in rows]

    # --- tags and the public listing --------------------------------------------------------------
    def set_tags(self, policy_id: str, tags: Iterable[str], *, by: str) -> PolicyRecord:
        from knowledge.policies.tags import TagCatalogue

        canonical = TagCatalogue(self.sessions).canonical(tags)
        with transaction(self.sessions) as s:
            p = _require(s, policy_id)
            if list(p.tags or []) != canonical:
                p.tags = canonical
                p.tags_text = "".join(f"|{t}" for t in canonical) + "|" if canonical else ""
                p.seq = bump_version(s)
                p.updated_by = by[:100]
            return to_record(p, _count(s, p.id))

    def library(
        self, *, q: str = "", status: str = "", tag: str = "", issuer: str = "", limit: int = 500
    ) -> builtins.list[PolicyRecord]:
        """The public listing: newest first, filtered by status, tag, issuer and a search over title,
        文号 and issuer (all optional)."""
        stmt = select(Policy).order_by(Policy.issued_on.desc().nulls_last(), Policy.id)
        if status:
            if status not in STATUSES:
                return []
            stmt = stmt.where(Policy.status == status)
        if tag:
            stmt = stmt.where(Policy.tags_text.contains(f"|{tag}|", autoescape=True))
        if issuer:
            stmt = stmt.where(Policy.issuer == issuer)
        for word in q.split()[:5]:
            like = f"%{word.replace('%', '').replace('_', '')}%"
            stmt = stmt.where(
                or_(Policy.title.like(like), Policy.doc_no.like(like), Policy.issuer.like(like))
            )
        with self.sessions() as s:
            return [to_record(p, 0) for p in s.execute(stmt.limit(max(1, min(limit, 2000)))).scalars()]

    def facets(self) -> tuple[builtins.list[str], builtins.list[str]]:
        """The tags and issuers present in the library (for its filters)."""
        with self.sessions() as s:
            tags: dict[str, None] = {}
            issuers: dict[str, None] = {}
            for t, i in s.execute(select(Policy.tags, Policy.issuer).order_by(Policy.issued_on.desc())):
                tags.update(dict.fromkeys(t or []))
                if i:
                    issuers[i] = None
            return sorted(tags), sorted(issuers)

    def citing_faqs(self, policy_id: str, *, published_only: bool = True) -> builtins.list[CitingFaq]:
        """The FAQs whose 来源文件 names this policy."""
        with self.sessions() as s:
            p = _require(s, policy_id)
            stmt = select(
                Faq.id, Faq.question, Faq.unit, Faq.source_article, Faq.status, Faq.source_policy, Faq.answer
            ).where(Faq.source_policy.is_not(None))
            if published_only:
                stmt = stmt.where(Faq.status == "published")
            return [
                CitingFaq(r.id, r.question, r.unit, r.source_article, r.status, r.answer or "")
                for r in s.execute(stmt.order_by(Faq.id))
                if cites(r.source_policy, p)
            ]


def _require(s: Session, policy_id: str) -> Policy:
    p = s.get(Policy, policy_id) if len(policy_id or "") <= 64 else None
    if p is None:
        raise NotFound(f"找不到文件“{policy_id}”。", f"policy {policy_id} not found")
    return p


def _resolve(s: Session, key: str) -> Policy:
    """A policy by id, 文号 (any bracket style) or title."""
    key = (key or "").strip()
    p = s.get(Policy, key) if key and len(key) <= 64 else None
    if p is None and key:
        p = s.execute(
            select(Policy).where(Policy.doc_no == normalise_doc_no(key)).limit(1)
        ).scalar_one_or_none()
    if p is None and key:
        p = s.execute(
            select(Policy).where(Policy.title == squash_cjk_spaces(key.strip("《》 "))).limit(1)
        ).scalar_one_or_none()
    if p is None:
        raise NotFound(f"找不到文件“{key}”。", f"policy {key!r} not found")
    return p


def _chain(s: Session, start: str, *, stop: str) -> bool:
    """Whether following replaced_by from `start` reaches `stop`."""
    seen: set[str] = set()
    current: str | None = start
    while current and current not in seen:
        if current == stop:
            return True
        seen.add(current)
        current = s.execute(select(Policy.replaced_by).where(Policy.id == current)).scalar_one_or_none()
    return False


def _count(s: Session, policy_id: str) -> int:
    return int(s.execute(select(func.count()).where(Passage.policy_id == policy_id)).scalar_one())
