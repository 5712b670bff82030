"""Console routes of the policy-library upkeep of each drafting unit (/console/upkeep): the unit's
review list (FAQs whose source policy was repealed, revised or expires within 30 days, with due
dates, overdue ones marked) and its broken service links (failed two checks in a row), with "复核完成"
for an item. Admins and supervisors see every unit, staff and readers their own; closing an item
needs the right to edit the unit's FAQs and is written to the audit log.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from handoff.console.deps import PREFIX, ConsoleDep, FaqEditor, WeeklyReader, base
from handoff.console.web import ConsoleRoute, render
from handoff.weekly import may_see_unit, visible_units
from knowledge.errors import NotFound
from knowledge.links import LinkStore
from knowledge.models import china_today
from knowledge.policies.review import ReviewList

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
UnitQ = Annotated[str, Query(max_length=200)]


@router.get("/upkeep")
def upkeep(staff: WeeklyReader, console: ConsoleDep, request: Request, unit: UnitQ = "") -> Response:
    reviews = ReviewList(console.sessions)
    links = LinkStore(console.sessions).list(broken=True)
    units = sorted(set(reviews.units()) | {u for r in links for u in r.units})
    role, own = staff.user.role, tuple(staff.user.departments)
    allowed = visible_units(role, own, units)
    if role not in ("admin", "supervisor"):
        allowed = sorted(set(allowed) | set(own))
    name = unit.strip() or (allowed[0] if len(allowed) == 1 else "")
    if name and not may_see_unit(role, own, name):
        raise NotFound("未找到该单位", f"unit {name!r} hidden from {staff.user.username}")
    items = reviews.items(unit=name) if name else []
    broken = [r for r in links if name in r.units] if name else []
    counts = {u: (len(reviews.items(unit=u)), sum(1 for r in links if u in r.units)) for u in allowed}
    return render(
        request,
        "upkeep.html",
        base(
            request,
            staff,
            title=f"政策维护 · {name}" if name else "政策维护",
            unit=name,
            units=allowed,
            counts=counts,
            items=items,
            broken=broken,
            today=china_today(),
            can_resolve=staff.user.may_edit_faq(name) if name else False,
        ),
    )


@router.post("/upkeep/reviews/{item_id}/done")
def review_done(staff: FaqEditor, console: ConsoleDep, item_id: int) -> Response:
    reviews = ReviewList(console.sessions)
    item = next((i for i in reviews.items() if i.id == item_id), None)
    if item is None or not staff.user.may_edit_faq(item.unit):
        raise NotFound("未找到该复核事项", f"review {item_id} hidden from {staff.user.username}")
    reviews.resolve(item_id, by=staff.user.username)
    console.audit.record(
        "faq_review_done",
        actor=staff.user.username,
        ip=staff.ip,
        target=item.faq_id,
        detail={"review": item_id, "reason": item.reason},
    )
    return RedirectResponse(f"{PREFIX}/upkeep?unit={quote(item.unit or '')}&done=review", status_code=303)
