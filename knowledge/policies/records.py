"""The plain records the policy package hands out: this module owns `PolicyRecord` (one policy's
metadata and status), `PassageRecord` (one stored passage), `PassageHit` (a passage found by a search,
with its policy's citation data) and the citation format 《标题》（文号）二(二) with the status appended
when a policy is no longer 有效. DB-free: the store converts its rows with `to_record`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.policies.validity import INACTIVE_STATUSES

if TYPE_CHECKING:
    from knowledge.models import Policy


@dataclass(frozen=True)
class PolicyRecord:
    id: str
    title: str
    doc_no: str | None
    issuer: str | None
    issued_on: dt.date | None
    status: str
    source_file: str | None
    url: str | None
    seq: int
    passage_count: int
    tags: tuple[str, ...] = ()
    expires_on: dt.date | None = None
    replaced_by: str | None = None
    service_url: str | None = None

    @property
    def is_current(self) -> bool:
        return self.status not in INACTIVE_STATUSES

    def citation(self, label: str | None = None) -> str:
        return _citation(self.title, self.doc_no, label, self.status)


@dataclass(frozen=True)
class PassageRecord:
    id: int
    policy_id: str
    ordinal: int
    label: str
    heading: str
    text: str


@dataclass(frozen=True)
class PassageHit:
    policy_id: str
    passage_id: int
    label: str
    text: str
    score: float
    title: str
    doc_no: str | None
    status: str
    issuer: str | None
    url: str | None = None
    heading: str = ""

    def citation(self) -> str:
        """《标题》（文号）二(二), with the status appended when the policy is not 有效."""
        return _citation(self.title, self.doc_no, self.label, self.status)


def _citation(title: str, doc_no: str | None, label: str | None, status: str) -> str:
    out = f"《{title}》"
    if doc_no:
        out += f"（{doc_no}）"
    if label:
        out += label
    if status and status != "有效":
        out += f"（该文件{status}）" if status == "已修订" else f"（该文件已{status}）"
    return out


def to_record(p: Policy, passage_count: int) -> PolicyRecord:
    return PolicyRecord(
        id=p.id,
        title=p.title,
        doc_no=p.doc_no,
        issuer=p.issuer,
        issued_on=p.issued_on,
        status=p.status,
        source_file=p.source_file,
        url=p.url,
        seq=p.seq,
        passage_count=passage_count,
        tags=tuple(p.tags or ()),
        expires_on=p.expires_on,
        replaced_by=p.replaced_by,
        service_url=p.service_url,
    )


def article_anchor(label: str | None) -> str:
    """The fragment id of an article on the policy page (/policies/<id>#a-二-二): the label with its
    brackets and dots turned into dashes, so that 二(二) and 二.4 give a plain, stable id."""
    import re

    slug = re.sub(r"[()（）.．\s]+", "-", label or "").strip("-")
    return f"a-{slug}" if slug else "a"


def article_link(policy_id: str, label: str | None) -> str:
    """The library address of one article of a policy (relative to the site)."""
    from urllib.parse import quote

    link = f"/policies/{quote(policy_id, safe='')}"
    return f"{link}#{quote(article_anchor(label), safe='-')}" if label else link
