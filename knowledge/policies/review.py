"""The FAQ review list (待复核问答) of each drafting unit: this module owns the `faq_review` rows. An FAQ
goes on it, once per reason and with a due date, when its source policy is repealed, expires or is
revised (`flag_citing`, called in the status change's transaction) and when the validity sweep finds
its source (or the FAQ itself) expiring within 30 days. The sweep (`ReviewList.sweep`, run daily by
the scheduler and by `policybot policy sweep`) also marks policies past their expiry date 失效 and
closes the reviews whose reason went away (the FAQ was edited to a current source, the policy
restored); staff close one with `resolve`.

A review is due `REVIEW_WORKING_DAYS` working days after it is flagged. Which days are working days is
the caller's calendar (`review_due`: the service passes handoff.sla's WorkCalendar, with the official
holidays and 调休 make-up workdays); used alone, this package counts Monday to Friday.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import NotFound
from knowledge.models import Faq, FaqReview, Policy, bump_version, china_today, utcnow
from knowledge.policies.library import SUPERSEDED_STATUSES, cites

log = logging.getLogger(__name__)

REVIEW_WORKING_DAYS = 10  # working days a unit has to review an FAQ whose source changed
DueRule = Callable[[dt.date], dt.date]  # the day a review flagged on a day is due
EXPIRY_WINDOW = 30  # days ahead the sweep looks for expiring sources
EXPIRING = "即将到期"
REASONS: tuple[str, ...] = ("废止", "失效", "已修订", EXPIRING)


@dataclass(frozen=True)
class ReviewItem:
    id: int
    faq_id: str
    question: str
    unit: str | None
    policy_id: str | None
    reason: str
    detail: str
    due_on: dt.date
    created_at: dt.datetime
    resolved_at: dt.datetime | None

    def overdue(self, today: dt.date) -> bool:
        return self.resolved_at is None and today > self.due_on

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "faq_id": self.faq_id,
            "question": self.question,
            "unit": self.unit,
            "policy_id": self.policy_id,
            "reason": self.reason,
            "detail": self.detail,
            "due_on": self.due_on.isoformat(),
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "resolved_at": self.resolved_at.isoformat(timespec="seconds") if self.resolved_at else None,
        }


@dataclass
class SweepResult:
    expired_policies: list[str] = field(default_factory=list)  # marked 失效 by this sweep
    flagged: list[int] = field(default_factory=list)  # review items added
    resolved: list[int] = field(default_factory=list)  # review items closed because the reason went away
    open: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "expired_policies": self.expired_policies,
            "flagged": self.flagged,
            "resolved": self.resolved,
            "open": self.open,
        }


def _detail(p: Policy) -> str:
    name = f"《{p.title}》" + (f"（{p.doc_no}）" if p.doc_no else "")
    if p.status == "已修订":
        return f"来源文件{name}已修订"
    if p.status in ("废止", "失效"):
        return f"来源文件{name}已{p.status}"
    return f"来源文件{name}将于{p.expires_on}到期" if p.expires_on else f"来源文件{name}"


def _flag(
    s: Session, *, faq: Faq, policy_id: str | None, reason: str, detail: str, due_on: dt.date
) -> FaqReview | None:
    """Add an open review for (faq, reason) unless one is open already."""
    open_ = s.execute(
        select(FaqReview).where(
            FaqReview.faq_id == faq.id, FaqReview.reason == reason, FaqReview.resolved_at.is_(None)
        )
    ).scalar_one_or_none()
    if open_ is not None:
        return None
    item = FaqReview(
        faq_id=faq.id, unit=faq.unit, policy_id=policy_id, reason=reason, detail=detail, due_on=due_on
    )
    s.add(item)
    s.flush()
    log.info("faq review flagged faq=%s reason=%s unit=%s due=%s", faq.id, reason, faq.unit, due_on)
    return item


def _citing(s: Session, p: Policy) -> list[Faq]:
    rows = s.execute(
        select(Faq).where(Faq.source_policy.is_not(None), Faq.status != "retired").order_by(Faq.id)
    ).scalars()
    return [f for f in rows if cites(f.source_policy, p)]


def weekdays_due(today: dt.date, n: int = REVIEW_WORKING_DAYS) -> dt.date:
    """The n-th Monday-to-Friday after `today` (without a holiday calendar)."""
    day = today
    while n > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def calendar_due(calendar: Any, n: int = REVIEW_WORKING_DAYS) -> DueRule:
    """The due rule of a working-day calendar (handoff.sla.WorkCalendar: `add_working_days(day, n).day`)."""
    return lambda day: calendar.add_working_days(day, n).day


def flag_citing(s: Session, p: Policy, due: dt.date) -> list[int]:
    """Put every FAQ citing a repealed, expired or revised policy on its unit's review list, due `due`."""
    if p.status not in SUPERSEDED_STATUSES:
        return []
    out: list[int] = []
    for f in _citing(s, p):
        item = _flag(s, faq=f, policy_id=p.id, reason=p.status, detail=_detail(p), due_on=due)
        if item is not None:
            out.append(item.id)
    return out


class ReviewList:
    """The review list of FAQs whose source changed, per drafting unit."""

    def __init__(self, sessions: sessionmaker[Session], *, review_due: DueRule | None = None) -> None:
        self.sessions = sessions
        self.review_due: DueRule = review_due or weekdays_due

    def items(self, *, unit: str | None = None, include_resolved: bool = False) -> list[ReviewItem]:
        stmt = (
            select(FaqReview, Faq.question)
            .join(Faq, Faq.id == FaqReview.faq_id, isouter=True)
            .order_by(FaqReview.due_on, FaqReview.id)
        )
        if unit is not None:
            stmt = stmt.where(FaqReview.unit == unit)
        if not include_resolved:
            stmt = stmt.where(FaqReview.resolved_at.is_(None))
        with self.sessions() as s:
            return [
                ReviewItem(
                    r.id,
                    r.faq_id,
                    q or "",
                    r.unit,
                    r.policy_id,
                    r.reason,
                    r.detail,
                    r.due_on,
                    r.created_at,
                    r.resolved_at,
                )
                for r, q in s.execute(stmt)
            ]

    def units(self) -> list[str]:
        with self.sessions() as s:
            rows = s.execute(
                select(FaqReview.unit).where(FaqReview.resolved_at.is_(None)).distinct()
            ).scalars()
            return sorted(u for u in rows if u)

    def resolve(self, item_id: int, *, by: str) -> ReviewItem:
        with transaction(self.sessions) as s:
            r = s.get(FaqReview, item_id)
            if r is None:
                raise NotFound(f"找不到复核事项 {item_id}。", f"review item {item_id} not found")
            if r.resolved_at is None:
                r.resolved_at = utcnow()
                r.resolved_by = by[:100]
            faq = s.get(Faq, r.faq_id)
            return ReviewItem(
                r.id,
                r.faq_id,
                faq.question if faq else "",
                r.unit,
                r.policy_id,
                r.reason,
                r.detail,
                r.due_on,
                r.created_at,
                r.resolved_at,
            )

    def sweep(
        self,
        *,
        today: dt.date | None = None,
        within_days: int = EXPIRY_WINDOW,
    ) -> SweepResult:
        """The daily validity sweep (see the module docstring); idempotent."""
        today = today or china_today()
        horizon = today + dt.timedelta(days=within_days)
        review_due = self.review_due(today)  # before the transaction: the calendar reads its own rows
        result = SweepResult()
        with transaction(self.sessions) as s:
            policies = list(s.execute(select(Policy)).scalars())
            for p in policies:
                if p.expires_on is not None and p.expires_on < today and p.status in ("有效", "已修订"):
                    p.status = "失效"
                    p.seq = bump_version(s)
                    p.updated_by = "sweep"
                    result.expired_policies.append(p.id)
                    log.info("policy expired id=%s on=%s", p.id, p.expires_on)
            faqs = list(s.execute(select(Faq).where(Faq.status != "retired").order_by(Faq.id)).scalars())
            sources: dict[str, Policy | None] = {}
            for f in faqs:
                src = _source(f, policies, sources)
                reasons = self._reasons(f, src, today, horizon)
                for reason, detail, due in reasons:
                    item = _flag(
                        s,
                        faq=f,
                        policy_id=src.id if src else None,
                        reason=reason,
                        detail=detail,
                        due_on=min(due, review_due) if due is not None else review_due,
                    )
                    if item is not None:
                        result.flagged.append(item.id)
                still = {r for r, _, _ in reasons}
                for r in s.execute(
                    select(FaqReview).where(FaqReview.faq_id == f.id, FaqReview.resolved_at.is_(None))
                ).scalars():
                    if r.reason not in still:
                        r.resolved_at = utcnow()
                        r.resolved_by = "sweep"
                        result.resolved.append(r.id)
            retired = {f.id for f in s.execute(select(Faq).where(Faq.status == "retired")).scalars()}
            for r in s.execute(select(FaqReview).where(FaqReview.resolved_at.is_(None))).scalars():
                if r.faq_id in retired:  # a retired FAQ needs no review any more
                    r.resolved_at = utcnow()
                    r.resolved_by = "sweep"
                    result.resolved.append(r.id)
            s.flush()
            result.open = len(
                list(s.execute(select(FaqReview.id).where(FaqReview.resolved_at.is_(None))).scalars())
            )
        return result

    @staticmethod
    def _reasons(
        f: Faq, p: Policy | None, today: dt.date, horizon: dt.date
    ) -> list[tuple[str, str, dt.date | None]]:
        out: list[tuple[str, str, dt.date | None]] = []
        if p is not None and p.status in SUPERSEDED_STATUSES:
            out.append((p.status, _detail(p), None))
        expiring: list[tuple[dt.date, str]] = []
        if (
            p is not None
            and p.status not in SUPERSEDED_STATUSES
            and p.expires_on
            and today <= p.expires_on <= horizon
        ):
            expiring.append((p.expires_on, _detail(p)))
        if f.valid_to is not None and today <= f.valid_to <= horizon:
            expiring.append((f.valid_to, f"问答有效期至{f.valid_to}"))
        if expiring:
            due, detail = min(expiring)
            out.append((EXPIRING, detail, due))
        return out


def _source(f: Faq, policies: list[Policy], cache: dict[str, Policy | None]) -> Policy | None:
    key = (f.source_policy or "").strip()
    if not key:
        return None
    if key not in cache:
        cache[key] = next((p for p in policies if cites(key, p)), None)
    return cache[key]
