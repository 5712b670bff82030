"""Builds the domain services from Settings, the one place where settings become constructor
arguments (the knowledge and handoff packages never read settings themselves)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from handoff.sla import WorkCalendar
from handoff.tickets import Notifier, TicketService
from knowledge.answer import KnowledgeBase
from knowledge.matcher import Thresholds


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        answer=settings.answer_threshold, margin=settings.answer_margin, clarify=settings.clarify_threshold
    )


def build_knowledge_base(settings: Settings, sessions: sessionmaker[Session]) -> KnowledgeBase:
    return KnowledgeBase(
        sessions,
        thresholds=thresholds(settings),
        passage_threshold=settings.passage_threshold,
        refresh_seconds=settings.index_refresh_seconds,
    )


def build_ticket_service(
    settings: Settings, sessions: sessionmaker[Session], notifier: Notifier | None = None
) -> TicketService:
    return TicketService(
        sessions,
        WorkCalendar(sessions),
        limits=settings.department_limits,
        default_limit=settings.ticket_limit_days,
        default_department=settings.default_department,
        notifier=notifier,
    )
