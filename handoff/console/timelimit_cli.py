"""`policybot tickets extend NO --days N | --limit N --reason R --as USER` (the handler's 延期 request)
and `policybot tickets extension NO approve|refuse [--note] --as SUPERVISOR` (the decision), on the
console's own path: the named console user's permissions (a 办理人员 of the ticket's department or a
督办 to request, a 督办 other than the requester to decide) and the same audit event."""

from __future__ import annotations

import argparse
from typing import Any

from handoff.console.audit import AuditLog
from handoff.console.cli import _handler
from knowledge.errors import InvalidInput


def _audit(ctx: Any, user: Any, action: str, no: str, **detail: Any) -> None:
    AuditLog(ctx.sessions).record(
        action, actor=user.username, role=user.role, ip="cli", target=no, detail={"via": "cli", **detail}
    )


def cmd_tickets_extend(args: argparse.Namespace, ctx: Any) -> int:
    user, t = _handler(ctx, args.as_user, args.no)
    ctx.tickets.request_extension(
        t.no, by=user.username, reason=args.reason, days=args.days, new_limit=args.limit
    )
    req = ctx.tickets.extensions(t.no)[-1]
    _audit(ctx, user, "extension_request", t.no, days=req.days, reason=req.reason)
    print(f"已提交留言 {t.no} 的延期申请：延长 {req.days} 个工作日，待督办审批。")
    return 0


def cmd_tickets_extension(args: argparse.Namespace, ctx: Any) -> int:
    user, t = _handler(ctx, args.as_user, args.no)
    if user.role != "supervisor":
        raise InvalidInput(
            f"账号 {user.username} 不是督办，不能审批延期", f"{user.username} is not a supervisor"
        )
    approve = args.decision == "approve"
    done = ctx.tickets.decide_extension(t.no, by=user.username, approve=approve, note=args.note)
    _audit(
        ctx,
        user,
        f"extension_{args.decision}",
        t.no,
        due_date=[t.due_date.isoformat(), done.due_date.isoformat()],
        note=(args.note or "")[:200],
    )
    if approve:
        print(f"已批准留言 {t.no} 延期，办理期限 {t.due_date} → {done.due_date}，已通知留言人。")
    else:
        print(f"已不批准留言 {t.no} 的延期申请，办理期限仍为 {done.due_date}。")
    return 0


def add_time_limit_commands(tk: Any) -> None:
    """The 延期 subcommands of `policybot tickets`."""
    p = tk.add_parser("extend", help="申请延期（由督办审批）")
    p.add_argument("no", help="留言编号")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--days", type=int, help="延长的工作日数")
    how.add_argument("--limit", type=int, help="延期后的办理时限（工作日，如 15）")
    p.add_argument("--reason", required=True, help="延期原因")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="办理人员或督办的后台账号")
    p.set_defaults(func=cmd_tickets_extend)
    p = tk.add_parser("extension", help="审批延期申请")
    p.add_argument("no", help="留言编号")
    p.add_argument("decision", choices=["approve", "refuse"], help="approve 批准 / refuse 不批准")
    p.add_argument("--note", default=None, help="审批意见")
    p.add_argument("--as", dest="as_user", required=True, metavar="SUPERVISOR", help="督办的后台账号")
    p.set_defaults(func=cmd_tickets_extension)
