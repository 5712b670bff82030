"""The FAQ catalogue the staff console browses: one page of entries matching every filter (text,
status, drafting unit, tag, source policy, validity on a day: current, expired, not yet valid,
expiring within a number of days), optionally limited to and ordered by a list of ids (the matcher's
hits), sorted by id, latest change, how often the entry was asked (the query log) or its rating
(share of 有用 among the ratings, or the count of 没用), with the usage figures of every entry shown
and the facet values (units, tags, source policies) for the filter lists. Drafts can be limited to
the units a user may draft for. Reads only; the store (`store`) writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Float, and_, case, cast, false, func, not_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput
from knowledge.faqs.fields import FieldError, clean_line, parse_status, search_norm
from knowledge.faqs.records import FaqRecord, to_record
from knowledge.models import Faq, QueryLog

SORTS: Final = {
    "id": "编号",
    "recent": "最近修改",
    "asked": "被问次数",
    "rating": "好评率",
    "useless": "差评次数",
}
VALIDITY: Final = {
    "current": "当前有效",
    "expired": "已失效",
    "pending": "尚未生效",
    "expiring": "即将到期",
}
EXPIRING_DAYS: Final = 30


@dataclass(frozen=True)
class CatalogFilter:
    """Every filter is optional (empty: not applied). `ids`: only these entries, in this order."""

    text: str = ""
    status: str = ""
    unit: str = ""
    tag: str = ""
    source_policy: str = ""
    validity: str = ""
    ids: tuple[str, ...] | None = None
    draft_units: tuple[str, ...] | None = None  # drafts only of these units (None: every draft)


@dataclass(frozen=True)
class Usage:
    """How often an entry was asked (query-log rows naming it) and how its answers were rated."""

    asked: int = 0
    useful: int = 0
    useless: int = 0

    @property
    def rating(self) -> float | None:
        rated = self.useful + self.useless
        return self.useful / rated if rated else None


@dataclass(frozen=True)
class CatalogRow:
    faq: FaqRecord
    usage: Usage


@dataclass(frozen=True)
class CatalogPage:
    rows: tuple[CatalogRow, ...]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class Facets:
    units: tuple[str, ...]
    tags: tuple[str, ...]
    source_policies: tuple[str, ...]


class FaqCatalog:
    """Read-side queries over the faq and query_log tables for browsing the knowledge base.
    `page(inactive_policies=...)` takes the keys (id, 文号, title) of source policies that are 失效/废止: an FAQ
    resting on one is not current whatever its dates say (`knowledge.policies.validity`)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def page(
        self,
        filt: CatalogFilter,
        *,
        sort: str = "id",
        page: int = 1,
        page_size: int = 50,
        today: dt.date,
        inactive_policies: Iterable[str] = (),
        expiring_days: int = EXPIRING_DAYS,
    ) -> CatalogPage:
        if sort not in SORTS:
            raise InvalidInput("排序方式无效", f"unknown sort {sort!r}")
        page_size = max(1, int(page_size))
        page = max(1, int(page))
        usage = _usage_subquery()
        conds = _conditions(filt, today, tuple(inactive_policies), expiring_days)
        asked = func.coalesce(usage.c.asked, 0)
        useful = func.coalesce(usage.c.useful, 0)
        useless = func.coalesce(usage.c.useless, 0)
        query = select(Faq, asked, useful, useless).outerjoin(usage, usage.c.faq_id == Faq.id).where(*conds)
        count_query = select(func.count()).select_from(Faq).where(*conds)
        with self._sessions() as s:
            total = int(s.execute(count_query).scalar_one())
            pages = max(1, -(-total // page_size))
            if filt.ids is not None:
                order = {fid: i for i, fid in enumerate(filt.ids)}
                found = [_row(r) for r in s.execute(query)]
                found.sort(key=lambda r: order.get(r.faq.id, len(order)))
                start = (page - 1) * page_size
                return CatalogPage(tuple(found[start : start + page_size]), total, page, pages)
            rated = useful + useless
            share = case((rated > 0, cast(useful, Float) / rated), else_=-1.0)
            orders: dict[str, Sequence[Any]] = {
                "id": (Faq.id,),
                "recent": (Faq.seq.desc(), Faq.id),
                "asked": (asked.desc(), Faq.id),
                "rating": (share.desc(), rated.desc(), Faq.id),
                "useless": (useless.desc(), asked.desc(), Faq.id),
            }
            query = query.order_by(*orders[sort]).limit(page_size).offset((page - 1) * page_size)
            rows = tuple(_row(r) for r in s.execute(query))
        return CatalogPage(rows, total, page, pages)

    def usage(self, faq_id: str) -> Usage:
        usage = _usage_subquery()
        with self._sessions() as s:
            r = s.execute(select(usage).where(usage.c.faq_id == faq_id)).first()
        return Usage(int(r.asked), int(r.useful), int(r.useless)) if r else Usage()

    def facets(self, *, draft_units: tuple[str, ...] | None = None) -> Facets:
        """The units, tags and source policies of the entries (for the filter lists)."""
        query = select(Faq.unit, Faq.tags, Faq.source_policy)
        if draft_units is not None:
            query = query.where(or_(Faq.status != "draft", Faq.unit.in_(draft_units)))
        units: set[str] = set()
        tags: set[str] = set()
        sources: set[str] = set()
        with self._sessions() as s:
            for unit, tag_list, source in s.execute(query):
                if unit:
                    units.add(unit)
                if source:
                    sources.add(source)
                tags.update(t for t in (tag_list or ()) if t)
        return Facets(tuple(sorted(units)), tuple(sorted(tags)), tuple(sorted(sources)))


def _usage_subquery() -> Any:
    return (
        select(
            QueryLog.faq_id.label("faq_id"),
            func.count().label("asked"),
            func.sum(case((QueryLog.rating == "useful", 1), else_=0)).label("useful"),
            func.sum(case((QueryLog.rating == "useless", 1), else_=0)).label("useless"),
        )
        .where(QueryLog.faq_id.is_not(None))
        .group_by(QueryLog.faq_id)
        .subquery()
    )


def _row(r: Any) -> CatalogRow:
    faq, asked, useful, useless = r
    return CatalogRow(to_record(faq), Usage(int(asked or 0), int(useful or 0), int(useless or 0)))


def _conditions(
    filt: CatalogFilter, today: dt.date, inactive: tuple[str, ...], expiring_days: int
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if filt.status:
        try:
            conds.append(Faq.status == parse_status(filt.status))
        except FieldError as e:
            raise InvalidInput(e.zh, e.en) from None
    if filt.unit:
        conds.append(Faq.unit == clean_line(filt.unit))
    if filt.tag:
        conds.append(Faq.tags_text.contains(f"|{search_norm(clean_line(filt.tag))}|", autoescape=True))
    if filt.source_policy:
        conds.append(Faq.source_policy == clean_line(filt.source_policy))
    for term in search_norm(clean_line(filt.text)).split():
        conds.append(Faq.search_text.contains(term, autoescape=True))
    if filt.ids is not None:
        conds.append(Faq.id.in_(filt.ids))
    if filt.draft_units is not None:
        conds.append(or_(Faq.status != "draft", Faq.unit.in_(filt.draft_units)))
    if filt.validity:
        conds.append(_validity(filt.validity, today, inactive, expiring_days))
    return conds


def _validity(kind: str, today: dt.date, inactive: tuple[str, ...], days: int) -> ColumnElement[bool]:
    dead_policy = Faq.source_policy.in_(inactive) if inactive else false()
    started = or_(Faq.valid_from.is_(None), Faq.valid_from <= today)
    not_ended = or_(Faq.valid_to.is_(None), Faq.valid_to >= today)
    if kind == "current":
        return and_(started, not_ended, not_(dead_policy))
    if kind == "expired":
        return or_(Faq.valid_to < today, dead_policy)
    if kind == "pending":
        return Faq.valid_from > today
    if kind == "expiring":
        return and_(Faq.valid_to >= today, Faq.valid_to <= today + dt.timedelta(days=days), not_(dead_policy))
    raise InvalidInput("有效期筛选无效", f"unknown validity filter {kind!r}")


__all__ = [
    "EXPIRING_DAYS",
    "SORTS",
    "VALIDITY",
    "CatalogFilter",
    "CatalogPage",
    "CatalogRow",
    "FaqCatalog",
    "Facets",
    "Usage",
]
