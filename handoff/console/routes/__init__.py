"""The console's route modules, one module-level `router` each (auth, queue, tickets, handling, faqs and the
knowledge base: kb, kb_import, kb_tools, suggestions, weekly, upkeep, dashboard, admin, smalltalk, timelimits), on the shared dependencies
of `handoff.console.deps`; `ROUTERS` is the order in which `handoff.console.router.build_console_router`
includes them under /console.
"""

from handoff.console.routes import (
    admin,
    auth,
    dashboard,
    faqs,
    handling,
    kb,
    kb_import,
    kb_tools,
    queue,
    smalltalk,
    suggestions,
    tickets,
    timelimits,
    upkeep,
    weekly,
)

ROUTERS = (
    auth.router,
    queue.router,
    tickets.router,
    handling.router,
    faqs.router,
    kb.router,
    kb_import.router,
    kb_tools.router,
    suggestions.router,
    dashboard.router,
    weekly.router,
    upkeep.router,
    admin.router,
    smalltalk.router,
    timelimits.router,
)

__all__ = ["ROUTERS"]
