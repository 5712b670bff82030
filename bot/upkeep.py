"""The scheduled upkeep of the policy library: this module owns the two daily jobs the app registers
with the scheduler (bot/jobs.py), the link check of every service link (knowledge.links) and the
validity sweep (knowledge.policies.review: expired policies, FAQs whose source was repealed, revised
or expires within 30 days go on their unit's review list), and the link checker built from settings
that the job and `policybot links check` share.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.services import review_due
from bot.settings import Settings
from knowledge.links import LinkChecker
from knowledge.policies.review import ReviewList

LINK_JOB = "link-check"
SWEEP_JOB = "validity-sweep"


def build_link_checker(settings: Settings, sessions: sessionmaker[Session]) -> LinkChecker:
    return LinkChecker(
        sessions, timeout=settings.link_check_timeout, host_interval=settings.link_check_host_interval
    )


def register_upkeep_jobs(scheduler: Any, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Register the daily link check and validity sweep (each disabled by an empty schedule)."""

    def check(ctx: Any) -> str:
        run = build_link_checker(settings, sessions).run()
        return (
            f"checked={run.checked} failed={run.failed} broken={len(run.broken)} "
            f"new={len(run.newly_broken)} recovered={len(run.recovered)}"
        )

    def sweep(ctx: Any) -> str:
        r = ReviewList(sessions, review_due=review_due(sessions)).sweep()
        return f"expired={len(r.expired_policies)} flagged={len(r.flagged)} resolved={len(r.resolved)} open={r.open}"

    if settings.link_check_schedule:
        scheduler.register(LINK_JOB, settings.link_check_schedule, check)
    if settings.validity_sweep_schedule:
        scheduler.register(SWEEP_JOB, settings.validity_sweep_schedule, sweep)
