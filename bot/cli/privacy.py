"""`policybot privacy export | erase | purge`: a citizen's personal data on request (PIPL): export
it as JSON, erase or anonymise it (with confirmation), and run the retention job once now.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.cli.context import Context, Subparsers, print_json
from knowledge.errors import PolicybotError


def _privacy_subject(args: argparse.Namespace, ctx: Context) -> tuple[Any, str]:
    from bot.app import shared_secret
    from bot.privacy import resolve

    subject = resolve(ctx.sessions, phone=args.phone, ticket=args.ticket, user=args.user_ref)
    return subject, shared_secret(ctx.settings, ctx.sessions)


def cmd_privacy_export(args: argparse.Namespace, ctx: Context) -> int:
    """A citizen's data as JSON (contact data in clear: handle the file as personal data)."""
    import os

    from bot.privacy import export_data

    subject, secret = _privacy_subject(args, ctx)
    data = export_data(ctx.sessions, secret, subject, by=args.by)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(
            f"已导出：留言 {len(data['tickets'])} 条，提问记录 {len(data['query_log'])} 条，"
            f"会话 {len(data['chat_sessions'])} 个 -> {args.out}（含个人信息，请妥善保管）",
            file=sys.stderr,
        )
    else:
        print(text)
    return 0


def cmd_privacy_erase(args: argparse.Namespace, ctx: Context) -> int:
    """Erase or anonymise a citizen's data (asks for confirmation unless --yes)."""
    from bot.privacy import erase_data, preview

    subject, secret = _privacy_subject(args, ctx)
    counts = preview(ctx.sessions, secret, subject)
    if counts.empty:
        print("未找到与该请求相关的个人信息，无需删除。")
        return 0
    print(f"将删除或匿名化：{counts.describe()}")
    if not args.yes:
        try:
            answer = input("确认删除？此操作不可撤销。输入 yes 继续：")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("yes", "y", "是"):
            raise PolicybotError(
                "已取消，未删除任何数据（非交互执行请加 --yes）", "privacy erase not confirmed"
            )
    done = erase_data(ctx.sessions, secret, subject, by=args.by)
    print(f"已删除：{done.describe()}")
    return 0


def cmd_privacy_purge(args: argparse.Namespace, ctx: Context) -> int:
    """Run the retention job once now (the service runs it daily)."""
    from bot.privacy import run_retention

    report = run_retention(ctx.settings, ctx.sessions)
    if args.json:
        print_json(report.__dict__)
    else:
        print(report.describe())
    return 0


def add_commands(sub: Subparsers) -> None:
    pv = sub.add_parser("privacy", help="个人信息：导出 / 删除（依申请）/ 按保存期限清理").add_subparsers(
        dest="privacy_command", required=True
    )
    for name, func, help_text in (
        ("export", cmd_privacy_export, "导出某人的全部个人信息（JSON）"),
        ("erase", cmd_privacy_erase, "删除或匿名化某人的个人信息（依申请）"),
    ):
        p = pv.add_parser(name, help=help_text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--phone", help="留言时留下的手机号码")
        who.add_argument("--ticket", help="留言编号，如 LY20261123-0007")
        who.add_argument("--user-ref", dest="user_ref", help="渠道:用户ID，如 wechat:oAbC123 或 web:w1a2b3")
        p.add_argument("--by", default="cli", help="经办人（记入审计日志）")
        if name == "export":
            p.add_argument("--out", help="输出文件（默认打印到标准输出）")
        else:
            p.add_argument("--yes", action="store_true", help="不再确认")
        p.set_defaults(func=func)
    p = pv.add_parser("purge", help="立即执行一次保存期限清理（服务每天自动执行）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_privacy_purge)
