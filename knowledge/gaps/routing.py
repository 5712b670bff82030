"""Which drafting unit (制文单位) a topic goes to: this module owns the admin keyword routes (table
`gap_route`: list, set, delete), the sources a unit can come from (`ROUTE_SOURCES`: a keyword route,
the unit logged with the questions, a knowledge-base search supplied by the caller, the tickets'
department, else 未归属 for an admin to assign) and the rules that pick a route or a majority unit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput, NotFound
from knowledge.models import GapRoute, utcnow

UNASSIGNED = "未归属"
ROUTE_SOURCES: dict[str, str] = {
    "route": "关键词路由",
    "log": "提问时匹配的单位",
    "ticket": "留言承办部门",
    "search": "检索最近的问答或政策",
    "none": "待管理员指定",
}


@dataclass(frozen=True)
class Route:
    keyword: str
    unit: str
    updated_by: str
    updated_at: dt.datetime


def _clean_keyword(keyword: str) -> str:
    k = re.sub(r"\s+", " ", keyword or "").strip()
    if not k:
        raise InvalidInput("关键词不能为空", "empty route keyword")
    if len(k) > 100:
        raise InvalidInput("关键词不能超过 100 个字", "route keyword longer than 100")
    return k


def _clean_unit(unit: str) -> str:
    u = re.sub(r"\s+", " ", unit or "").strip()
    if not u:
        raise InvalidInput("单位名称不能为空", "empty route unit")
    if len(u) > 200:
        raise InvalidInput("单位名称不能超过 200 个字", "route unit longer than 200")
    return u


def list_routes(sessions: sessionmaker[Session]) -> list[Route]:
    with sessions() as s:
        rows = s.execute(select(GapRoute).order_by(GapRoute.keyword)).scalars().all()
        return [Route(r.keyword, r.unit, r.updated_by, r.updated_at) for r in rows]


def set_route(sessions: sessionmaker[Session], *, keyword: str, unit: str, by: str) -> Route:
    """Create or replace the route of a keyword."""
    k, u = _clean_keyword(keyword), _clean_unit(unit)
    who = (by or "system").strip()[:100] or "system"
    now = utcnow()
    with sessions.begin() as s:
        row = s.get(GapRoute, k, with_for_update=True)
        if row is None:
            s.add(GapRoute(keyword=k, unit=u, updated_by=who, updated_at=now))
        else:
            row.unit, row.updated_by, row.updated_at = u, who, now
    return Route(k, u, who, now)


def delete_route(sessions: sessionmaker[Session], *, keyword: str) -> None:
    k = _clean_keyword(keyword)
    with sessions.begin() as s:
        row = s.get(GapRoute, k)
        if row is None:
            raise NotFound(f"没有关键词“{k}”的路由", f"no gap route for {k!r}")
        s.delete(row)


def route_for(norms: Sequence[tuple[str, int]], total: int, routes: Sequence[tuple[str, str]]) -> str | None:
    """The unit of the route keyword contained in most of the topic's questions (at least half)."""
    best: tuple[int, int, str, str] | None = None
    for kw, unit in routes:
        hits = sum(n for norm, n in norms if kw in norm)
        if hits * 2 >= total and hits > 0:
            cand = (hits, len(kw), kw, unit)
            if (
                best is None
                or (cand[0], cand[1]) > (best[0], best[1])
                or ((cand[0], cand[1]) == (best[0], best[1]) and cand[2] < best[2])
            ):
                best = cand
    return best[3] if best else None


def majority(values: Iterable[str | None]) -> str | None:
    c = Counter(v.strip() for v in values if v and v.strip())
    if not c:
        return None
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
