"""The console's route modules, one module-level `router` each (auth, queue, tickets, faqs,
suggestions, weekly, dashboard, admin), on the shared dependencies of `handoff.console.deps`; `ROUTERS` is the order in
which `handoff.console.router.build_console_router` includes them under /console.
"""

from handoff.console.routes import admin, auth, dashboard, faqs, queue, suggestions, tickets, weekly

ROUTERS = (
    auth.router,
    queue.router,
    tickets.router,
    faqs.router,
    suggestions.router,
    dashboard.router,
    weekly.router,
    admin.router,
)

__all__ = ["ROUTERS"]
