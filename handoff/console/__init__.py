"""The staff console (/console), the public message board (/board), the policy library (/policies)
and the public FAQ list (/faq).

`build_console_router(...)` (in `router`) and `build_board_router(...)` take the services they need
(sessions, TicketService, KnowledgeBase, ConsoleConfig); the app factory in `bot` wires them. The
console's routes live in `routes/` (one module each) on the dependencies of `deps`. Accounts,
sessions and throttling live in `auth`, the audit log in `audit`, HTTP plumbing in `web`.
"""

from handoff.console.audit import AuditLog
from handoff.console.auth import Accounts, User, check_password_policy
from handoff.console.board import build_board_router
from handoff.console.config import ConsoleConfig
from handoff.console.library import build_library_router
from handoff.console.public_faq import build_public_faq_router
from handoff.console.router import build_console_router
from handoff.console.routes.kb_import import KB_UPLOAD_PATH

__all__ = [
    "KB_UPLOAD_PATH",
    "Accounts",
    "AuditLog",
    "ConsoleConfig",
    "User",
    "build_board_router",
    "build_console_router",
    "build_library_router",
    "build_public_faq_router",
    "check_password_policy",
]
