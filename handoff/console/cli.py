"""`policybot users add|edit|passwd|disable|enable|list`: console accounts from the command line (the
first admin is created here). Passwords are read with getpass, or one line from stdin with
--password-stdin; there is never a default password. `policybot tickets reply NO TEXT --as USER`:
a staff reply on the console's own path (that user's permissions, the same audit event; the
ticket service queues the message to the citizen). The caller passes a context with `sessions`
(and `tickets` for the reply).
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from handoff.console.audit import AuditLog
from handoff.console.auth import ROLE_LABELS, ROLES, Accounts
from handoff.console.config import ConsoleConfig
from handoff.tickets import TicketService
from knowledge.errors import InvalidInput, NotFound


class _Context(Protocol):
    @property
    def sessions(self) -> sessionmaker[Session]: ...


def _accounts(ctx: _Context) -> Accounts:
    # Only user management happens here: the signing key is not used, any value will do.
    return Accounts(ctx.sessions, ConsoleConfig(secret_key=secrets.token_urlsafe(32)))


def _handler(ctx: Any, as_user: str | None, no: str) -> tuple[Any, Any]:
    """The console user named by --as and the ticket, if that user may handle it in the console."""
    tickets: TicketService = ctx.tickets
    name = (as_user or "").strip().lower()
    user = next((u for u in _accounts(ctx).users() if u.username == name), None)
    if user is None or not user.active:
        raise NotFound(f"未找到可用的后台账号：{name}", f"no active console user {name!r}")
    t = tickets.get(no)
    if not user.may_handle_ticket(t.department):
        raise InvalidInput(
            f"账号 {name} 无权办理该留言（承办部门：{t.department}）",
            f"{name} may not handle ticket {t.no} of {t.department}",
        )
    return user, t


def _reply(ctx: Any, user: Any, t: Any, text: str, **detail: Any) -> Any:
    done = ctx.tickets.reply(t.no, staff=user.username, text=text)
    AuditLog(ctx.sessions).record(
        "reply",
        actor=user.username,
        role=user.role,
        ip="cli",
        target=done.no,
        detail={"channel": done.channel, "length": len(text.strip()), "via": "cli", **detail},
    )
    return done


def cmd_tickets_reply(args: argparse.Namespace, ctx: Any) -> int:
    """Reply as a console user: refused unless that user may handle the ticket in the console."""
    user, t = _handler(ctx, args.as_user, args.no)
    text = sys.stdin.read() if args.text == "-" else args.text
    done = _reply(ctx, user, t, text)
    print(f"已答复留言 {done.no}（{done.status}），答复将通过原渠道（{done.channel}）推送给留言人。")
    return 0


def cmd_tickets_answer(args: argparse.Namespace, ctx: Any) -> int:
    """Reply with a published FAQ's answer and source, as a console user; the ticket's question
    becomes a candidate phrasing of that FAQ (reviewed in `kb suggestions`)."""
    from handoff.tickets.promotion import faq_reply_text, offer_ticket_phrasing
    from knowledge.suggestions import SuggestionStore

    user, t = _handler(ctx, args.as_user, args.no)
    text = faq_reply_text(ctx.kb, args.faq)
    done = _reply(ctx, user, t, text, faq=args.faq)
    learned = offer_ticket_phrasing(SuggestionStore(ctx.kb), done, args.faq)
    print(
        f"已用问答 {args.faq} 答复留言 {done.no}（{done.status}），答复将通过原渠道（{done.channel}）推送给留言人。"
    )
    if learned:
        print(f"留言问题已加入问答 {args.faq} 的建议问法（编号 {learned}），待审核。")
    return 0


def cmd_tickets_merge(args: argparse.Namespace, ctx: Any) -> int:
    """Merge a duplicate into the kept ticket as a console user who may handle both (audited)."""
    user, t = _handler(ctx, args.as_user, args.no)
    _, kept = _handler(ctx, args.as_user, args.into)
    done = ctx.tickets.merge(t.no, into=kept.no, by=user.username)
    audit = AuditLog(ctx.sessions)
    audit.record(
        "merge", actor=user.username, role=user.role, ip="cli", target=done.no, detail={"into": kept.no}
    )
    audit.record(
        "merged_in", actor=user.username, role=user.role, ip="cli", target=kept.no, detail={"from": done.no}
    )
    print(f"已将留言 {done.no} 合并到 {kept.no}；答复 {kept.no} 时，{done.no} 的留言人将一并收到答复。")
    return 0


def cmd_tickets_search(args: argparse.Namespace, ctx: Any) -> int:
    """Search tickets by number, phone, name or text as a console user (that user's departments;
    phone and name searches audited as contact searches, phones masked)."""
    from handoff.console.deps import visible_departments
    from handoff.console.ticket_search import masked_phone, search

    name = (args.as_user or "").strip().lower()
    user = next((u for u in _accounts(ctx).users() if u.username == name and u.active), None)
    if user is None:
        raise NotFound(f"未找到可用的后台账号：{name}", f"no active console user {name!r}")
    found = search(
        ctx.tickets,
        AuditLog(ctx.sessions),
        args.query,
        actor=user.username,
        role=user.role,
        ip="cli",
        departments=visible_departments(user),
        contacts=user.role in ("staff", "supervisor"),
        limit=args.limit,
    )
    if args.json:
        rows = [
            {
                "no": t.no,
                "status": t.status,
                "department": t.department,
                "phone": masked_phone(t) or None,
                "question": t.question[:100],
            }
            for t in found.rows
        ]
        print(json.dumps({"kind": found.kind, "tickets": rows}, ensure_ascii=False, default=str))
        return 0
    print("编号\t状态\t承办部门\t联系电话\t问题")
    for t in found.rows:
        print(f"{t.no}\t{t.status}\t{t.department}\t{masked_phone(t) or '-'}\t{t.question[:60]}")
    print(f"共 {len(found.rows)} 条")
    return 0


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("密码：")
    second = getpass.getpass("再次输入密码：")
    if first != second:
        raise InvalidInput("两次输入的密码不一致", "passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace, ctx: _Context) -> int:
    password = read_password(args)
    user = _accounts(ctx).add_user(
        args.username,
        password,
        role=args.role,
        departments=args.department or [],
        display_name=args.name or "",
        email=args.email or "",
        by="cli",
    )
    AuditLog(ctx.sessions).record(
        "user_add",
        actor="cli",
        target=user.username,
        detail={"role": user.role, "departments": list(user.departments)},
    )
    print(f"已创建用户 {user.username}（{ROLE_LABELS[user.role]}）")
    return 0


def cmd_users_passwd(args: argparse.Namespace, ctx: _Context) -> int:
    password = read_password(args)
    user = _accounts(ctx).set_password(args.username, password)
    AuditLog(ctx.sessions).record("user_password", actor="cli", target=user.username)
    print(f"已修改用户 {user.username} 的密码（其登录会话已失效）")
    return 0


def cmd_users_active(args: argparse.Namespace, ctx: _Context) -> int:
    active = args.users_command == "enable"
    user = _accounts(ctx).set_active(args.username, active)
    AuditLog(ctx.sessions).record("user_edit", actor="cli", target=user.username, detail={"active": active})
    print(f"已{'启用' if active else '停用'}用户 {user.username}")
    return 0


def cmd_users_edit(args: argparse.Namespace, ctx: _Context) -> int:
    """Change the notification e-mail of an account (`--email ""` removes it)."""
    accounts, name = _accounts(ctx), (args.username or "").strip().lower()
    user = next((u for u in accounts.users() if u.username == name), None)
    if user is None:
        raise NotFound(f"未找到用户 {name}", f"user {name!r} not found")
    user = accounts.update_user(
        user.id,
        role=user.role,
        departments=user.departments,
        display_name=user.display_name,
        active=user.active,
        email=args.email,
    )
    AuditLog(ctx.sessions).record(
        "user_edit", actor="cli", target=user.username, detail={"email": user.email}
    )
    print(f"已修改用户 {user.username} 的提醒邮箱：{user.email or '（无）'}")
    return 0


def cmd_users_list(args: argparse.Namespace, ctx: _Context) -> int:
    users = _accounts(ctx).users()
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "username": u.username,
                "name": u.display_name,
                "role": u.role,
                "departments": list(u.departments),
                "active": u.active,
                "email": u.email,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in users
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for u in users:
        state = "" if u.active else "  [已停用]"
        print(f"{u.username}\t{u.display_name}\t{ROLE_LABELS[u.role]}\t{'、'.join(u.departments)}{state}")
    return 0


def add_users_commands(sub: Any) -> None:
    """Add the `users` command group to the top-level subparsers of `policybot`."""
    us = sub.add_parser(
        "users", help="后台账号：add | edit | passwd | disable | enable | list"
    ).add_subparsers(dest="users_command", required=True)
    p = us.add_parser("add", help="新增账号（第一个管理员用此命令创建）")
    p.add_argument("username")
    p.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="admin 系统管理员 | staff 办理人员 | supervisor 督办 | reader 制文单位只读",
    )
    p.add_argument("--department", action="append", help="所属部门（staff / reader 必填，可多次）")
    p.add_argument("--name", help="显示名称")
    p.add_argument("--email", help="接收工作人员提醒邮件的邮箱（新留言、到期提醒、超期督办）")
    p.add_argument(
        "--password-stdin", dest="password_stdin", action="store_true", help="从标准输入读取一行密码"
    )
    p.set_defaults(func=cmd_users_add)
    p = us.add_parser("passwd", help="修改密码")
    p.add_argument("username")
    p.add_argument("--password-stdin", dest="password_stdin", action="store_true")
    p.set_defaults(func=cmd_users_passwd)
    p = us.add_parser("edit", help="修改账号的提醒邮箱")
    p.add_argument("username")
    p.add_argument("--email", required=True, help='接收提醒邮件的邮箱；"" 表示不再发送')
    p.set_defaults(func=cmd_users_edit)
    for name, text in (("disable", "停用账号"), ("enable", "启用账号")):
        p = us.add_parser(name, help=text)
        p.add_argument("username")
        p.set_defaults(func=cmd_users_active)
    p = us.add_parser("list", help="列出账号")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_list)
