"""Builds the domain services from Settings, the one place where settings become constructor
arguments (the knowledge and handoff packages never read settings themselves)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from bot.notifier import TicketNotices, render_delivery
from bot.pipeline.outbox import Outbox
from bot.settings import Settings
from handoff.sla import WorkCalendar
from handoff.tickets import Notifier, TicketService
from handoff.tickets.limits import CategoryLimits
from knowledge.answer import KnowledgeBase
from knowledge.calibration import ThresholdPins
from knowledge.policies.review import calendar_due


def threshold_pins(settings: Settings) -> ThresholdPins:
    """The thresholds the operator pinned; the rest are set from the store (knowledge.calibration)."""
    return ThresholdPins(
        answer=settings.answer_threshold, margin=settings.answer_margin, clarify=settings.clarify_threshold
    )


def review_due(sessions: sessionmaker[Session]) -> Callable[[dt.date], dt.date]:
    """Due dates of the FAQ review list: REVIEW_WORKING_DAYS (10) working days of the holiday calendar
    (handoff.sla: official holidays and 调休 make-up workdays)."""
    return calendar_due(WorkCalendar(sessions))


def build_knowledge_base(settings: Settings, sessions: sessionmaker[Session]) -> KnowledgeBase:
    kb = KnowledgeBase(
        sessions,
        pins=threshold_pins(settings),
        passage_threshold=settings.passage_threshold,
        refresh_seconds=settings.index_refresh_seconds,
        public_base_url=settings.public_base_url,
        calibrate_debounce_seconds=settings.calibrate_debounce_seconds,
    )
    kb.policies.review_due = review_due(sessions)
    return kb


def build_outbox(settings: Settings, sessions: sessionmaker[Session]) -> Outbox:
    """The durable outbox; the app adds its channels and starts the drain thread, other processes
    (the CLI) only write rows to it."""
    return Outbox(
        sessions,
        render=render_delivery,
        attempts=settings.push_attempts,
        backoff=settings.push_backoff_seconds,
        rates=settings.push_rates,
    )


def build_ticket_service(
    settings: Settings, sessions: sessionmaker[Session], notifier: Notifier | None = None
) -> TicketService:
    """The ticket service; replies go to the durable outbox unless another notifier is given."""
    if notifier is None:
        notifier = TicketNotices(build_outbox(settings, sessions))
    return TicketService(
        sessions,
        WorkCalendar(sessions),
        limits=settings.department_limits,
        default_limit=settings.ticket_limit_days,
        default_department=settings.default_department,
        notifier=notifier,
        category_limits=CategoryLimits(sessions, settings.sla_days),
        notices=notifier if isinstance(notifier, TicketNotices) else None,  # 延期/补正 notices
        supplement_limit=settings.supplement_limit_days,
    )
