"""`policybot tickets list | show | reply | answer | merge | search` and `policybot deliveries list`: citizens' tickets (personal
data masked) and the delivery queue of later messages. `tickets reply` is handoff's own
(handoff.console.cli.cmd_tickets_reply: the console user's permissions and audit event); so is
`tickets answer NO --faq FAQ_ID` (reply with an FAQ, which learns the ticket's wording) and
`tickets extend` / `tickets extension` (延期, handoff.console.timelimit_cli).
"""

from __future__ import annotations

import argparse

from bot.cli.context import Context, Subparsers, print_json


def cmd_tickets_list(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.privacy import mask

    rows = ctx.tickets.list(status=args.status, limit=args.limit)
    if args.json:
        print_json(
            [
                {
                    "no": t.no,
                    "status": t.status,
                    "department": t.department,
                    "due_date": t.due_date,
                    "question": mask(t.question),
                    "contact_name": t.contact_name,
                    "contact_phone": mask(t.contact_phone) if t.contact_phone else None,
                    "channel": t.channel,
                    "created_at": t.created_at,
                }
                for t in rows
            ]
        )
        return 0
    print("编号\t状态\t承办部门\t办理期限\t联系电话\t问题")
    for t in rows:
        phone = mask(t.contact_phone) if t.contact_phone else "-"
        print(f"{t.no}\t{t.status}\t{t.department}\t{t.due_date}\t{phone}\t{mask(t.question)[:60]}")
    print(f"共 {len(rows)} 条")
    return 0


def cmd_tickets_show(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.privacy import mask

    t = ctx.tickets.get(args.no)
    print(f"编号：{t.no}\n状态：{t.status}\n承办部门：{t.department}\n办理期限：{t.due_date}")
    limit = f"{t.limit_days} 个工作日" if t.limit_days is not None else "—"
    print(
        f"办理时限：{limit}（类型 {t.category}，延期 {t.extension_days}，补正暂停 {t.paused_days} 个工作日）"
    )
    print(f"渠道：{t.channel}\n问题：{mask(t.question)}\n答复：{t.reply or '（尚未答复）'}")
    return 0


def cmd_deliveries_list(args: argparse.Namespace, ctx: Context) -> int:
    from bot.services import build_outbox

    rows = build_outbox(ctx.settings, ctx.sessions).rows(status=args.status, limit=args.limit)
    if args.json:
        print_json([d.as_dict() for d in rows])
        return 0
    labels = {"pending": "待发送", "sent": "已发送", "failed": "失败", "impossible": "无法送达"}
    print("编号\t类型\t渠道\t留言编号\t状态\t尝试次数\t下次尝试\t错误")
    for d in rows:
        nxt = d.next_at.strftime("%Y-%m-%d %H:%M:%S") if d.status == "pending" else "-"
        print(
            f"{d.id}\t{d.kind}\t{d.channel}\t{d.data.get('ticket_no') or '-'}\t{labels.get(d.status, d.status)}"
            f"\t{d.attempts}\t{nxt}\t{(d.last_error or '-')[:80]}"
        )
    print(f"共 {len(rows)} 条")
    return 0


def add_commands(sub: Subparsers) -> None:
    from handoff.console.cli import (
        cmd_tickets_answer,
        cmd_tickets_merge,
        cmd_tickets_reply,
        cmd_tickets_search,
    )
    from handoff.console.timelimit_cli import add_time_limit_commands

    tk = sub.add_parser("tickets", help="政策留言").add_subparsers(dest="tickets_command", required=True)
    p = tk.add_parser("list")
    p.add_argument("--status", choices=["待受理", "办理中", "待补正", "已答复", "已办结", "已合并"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tickets_list)
    p = tk.add_parser("reply", help="以后台账号答复留言（权限、审计与工作台相同；答复经投递队列推送）")
    p.add_argument("no", help="留言编号")
    p.add_argument("text", help="答复内容（- 表示从标准输入读取）")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="办理人员或督办的后台账号")
    p.set_defaults(func=cmd_tickets_reply)
    p = tk.add_parser(
        "answer", help="以已发布问答的答案和出处答复留言（留言问题成为该问答的建议问法，待审核）"
    )
    p.add_argument("no", help="留言编号")
    p.add_argument("--faq", required=True, metavar="FAQ_ID", help="问答编号")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="办理人员或督办的后台账号")
    p.set_defaults(func=cmd_tickets_answer)
    add_time_limit_commands(tk)  # tickets extend / tickets extension (延期)
    p = tk.add_parser("merge", help="将重复留言合并到保留的留言（其留言人将收到保留留言的答复）")
    p.add_argument("no", help="重复的留言编号（将标记为已合并）")
    p.add_argument("--into", required=True, metavar="NO2", help="保留的留言编号")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="办理人员或督办的后台账号")
    p.set_defaults(func=cmd_tickets_merge)
    p = tk.add_parser(
        "search", help="按留言编号、手机号码、姓名或内容查找留言（按号码或姓名查找记入审计日志）"
    )
    p.add_argument("query", help="留言编号、手机号码（可只填部分数字）、姓名或内容")
    p.add_argument(
        "--as", dest="as_user", required=True, metavar="USERNAME", help="后台账号（按其可见部门查找）"
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tickets_search)
    dl = sub.add_parser("deliveries", help="投递队列（答复等稍后发给留言人的消息）").add_subparsers(
        dest="deliveries_command", required=True
    )
    p = dl.add_parser("list", help="列出投递记录")
    p.add_argument("--status", choices=["pending", "sent", "failed", "impossible"])
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deliveries_list)
    p = tk.add_parser("show")
    p.add_argument("no")
    p.set_defaults(func=cmd_tickets_show)
