"""The staff console router (/console): `build_console_router` takes the services the app factory
wires, binds them as the `Console` context of every request and includes the route modules of
`handoff.console.routes` (login and logout, queues, the ticket page and its actions, FAQ review,
办理统计, the weekly unanswered-questions reports, the dashboard, the admin pages).

Every route declares the roles it admits through an `Annotated` guard of `handoff.console.deps`;
ticket routes check the ticket's department on top (another department's ticket is a 404, as if it
did not exist). Forms carry the session's CSRF token; changes use the ticket's version so two staff
members never overwrite each other's reply. Every login, contact-data view, reply, transfer,
publication and FAQ change is written to the audit log with the actor and the client IP.
"""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker

from handoff.console.audit import AuditLog
from handoff.console.auth import Accounts
from handoff.console.config import ConsoleConfig
from handoff.console.deps import Console, RoleGuard
from handoff.console.routes import ROUTERS
from handoff.console.web import ConsoleRoute, PreCsrf
from handoff.sla import WorkCalendar
from handoff.tickets import TicketService
from handoff.weekly import WeeklyReports
from knowledge.answer import KnowledgeBase
from knowledge.faqs import FaqStore
from knowledge.smalltalk import SmallTalkStore


def build_console_router(
    *,
    sessions: sessionmaker[Session],
    tickets: TicketService,
    kb: KnowledgeBase,
    config: ConsoleConfig,
    faqs: FaqStore | None = None,
    calendar: WorkCalendar | None = None,
    accounts: Accounts | None = None,
    audit: AuditLog | None = None,
    weekly: WeeklyReports | None = None,
    report_runs: Callable[[], Sequence[Any]] | None = None,
    report_schedule: str = "",
    smalltalk: SmallTalkStore | None = None,
) -> APIRouter:
    """The /console router. The app passes the shared services; nothing here reads settings."""
    console = Console(
        sessions=sessions,
        tickets=tickets,
        kb=kb,
        config=config,
        faqs=faqs or kb.faqs,
        calendar=calendar or WorkCalendar(sessions),
        accounts=accounts or Accounts(sessions, config),
        audit=audit or AuditLog(sessions),
        weekly=weekly or WeeklyReports(sessions, kb),
        pre=PreCsrf(config),
        report_runs=report_runs,
        report_schedule=report_schedule,
        smalltalk=smalltalk,
    )
    router = APIRouter(
        route_class=ConsoleRoute, include_in_schema=False, dependencies=[Depends(console.bind())]
    )
    for routes in ROUTERS:
        router.include_router(routes)
        console.route_roles.update(role_table(routes))
    router.guard = console  # type: ignore[attr-defined]  # .route_roles: the role table, for tests and docs
    return router


def role_table(routes: APIRouter) -> dict[tuple[str, str], frozenset[str]]:
    """(method, path) -> the roles its guard admits; an empty set for the public routes."""
    table: dict[tuple[str, str], frozenset[str]] = {}
    for route in routes.routes:
        if not isinstance(route, APIRoute):
            continue
        guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, RoleGuard)]
        roles = guards[0].roles if guards else frozenset()
        for method in route.methods or ():
            table[(method, route.path)] = roles
    return table


__all__ = ["build_console_router", "role_table"]
