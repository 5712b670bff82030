"""The scheduled job of ticket time limits: every day (`POLICYBOT_SUPPLEMENT_SCHEDULE`) the tickets whose
补正 limit has passed resume on what they have (handoff.tickets.supplements.expire_supplements; the
citizen is told through the outbox and the ticket's history says why)."""

from __future__ import annotations

from typing import Any

from bot.settings import Settings

SUPPLEMENT_JOB = "supplement-limit"


def register_supplement_job(scheduler: Any, settings: Settings, tickets: Any) -> None:
    """Register the daily 补正 limit run (disabled by an empty schedule)."""

    def run(ctx: Any) -> str:
        resumed = tickets.expire_supplements()
        return f"resumed={len(resumed)}" + (f" tickets={','.join(resumed[:20])}" if resumed else "")

    if settings.supplement_schedule:
        scheduler.register(SUPPLEMENT_JOB, settings.supplement_schedule, run)
